-- A person looked up by their HR / IdP id alone (the console's and the ops API's person page:
-- find_person matches id, source id or address): without it, a sequential scan of people
-- (BENCHMARKS.md, "journal at scale": 60 of the 69 ms of a person page at 100,000 people).
CREATE INDEX people_source_person_id ON people (source_person_id);
