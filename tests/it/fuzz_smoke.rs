//! The fuzz targets' bodies (`fuzz/`, FUZZING.md) over their committed seeds and a few
//! thousand deterministic mutations of them, in the ordinary test build: the smoke CI runs
//! on every change. libFuzzer's coverage-guided runs need an instrumented build of Keycard
//! and every dependency (10 to 40 minutes on CI's two cores), so they are run by hand with
//! `scripts/fuzz`; this replays the same code paths in seconds. A target fails by panicking.
//!
//! The bodies are the fuzz crate's own file, included by path: the fuzz crate is built
//! apart from this package (it needs libFuzzer), and one copy of each body is what keeps
//! the two runs testing the same thing.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use std::path::Path;

/// Each target with its seed directory name.
type Target = fn(&[u8]);
const TARGETS: &[(&str, Target)] = &[
    ("native_event", targets::native_event),
    ("vendor_payload", targets::vendor_payload),
    ("signature_headers", targets::signature_headers),
    ("scim_filter", targets::scim_filter),
    ("scim_patch", targets::scim_patch),
    ("ops_query", targets::ops_query),
];

/// Mutations per seed: enough to leave the seeds' exact paths, few enough for seconds.
const MUTATIONS: u64 = 300;

/// A small deterministic generator (SplitMix64): the same inputs on every run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One libFuzzer-style mutation: flip, insert, delete, duplicate a run, or splice in a
/// byte that parsers treat specially.
fn mutate(seed: &[u8], rng: &mut Mix) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next() as u8),
            2 if !out.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at.min(out.len())..end);
            }
            3 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(16)).min(out.len());
                let run = out[start..end].to_vec();
                out.splice(at..at, run);
            }
            _ => {
                const SPECIAL: &[u8] = b"\"\\{}[]:,\x00\xff0-9eE.+ \n\r\t%";
                out.insert(at, SPECIAL[rng.below(SPECIAL.len())]);
            }
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_their_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, target) in TARGETS {
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "{name} has no committed seeds");
        seeds.push(Vec::new());
        let mut rng = Mix(0x006B_6579_6361_7264);
        let mut runs = 0u64;
        for seed in &seeds {
            target(seed);
            for _ in 0..MUTATIONS {
                target(&mutate(seed, &mut rng));
                runs += 1;
            }
        }
        eprintln!("fuzz smoke {name}: {} seeds, {runs} mutations", seeds.len());
    }
}
