//! Unit tests for compiling and evaluating rules.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn rule(name: &str, when: &str) -> RuleConfig {
    RuleConfig {
        name: name.to_owned(),
        when: when.to_owned(),
        org_role: None,
        workspaces: BTreeMap::new(),
        priority: 0,
    }
}

fn role(mut r: RuleConfig, org_role: &str) -> RuleConfig {
    r.org_role = Some(org_role.to_owned());
    r
}

fn ws(mut r: RuleConfig, workspace: &str, workspace_role: &str) -> RuleConfig {
    r.workspaces
        .insert(workspace.to_owned(), workspace_role.to_owned());
    r
}

fn prio(mut r: RuleConfig, priority: i32) -> RuleConfig {
    r.priority = priority;
    r
}

fn default_grant(org_role: Option<&str>, workspaces: &[(&str, &str)]) -> DefaultConfig {
    DefaultConfig {
        org_role: org_role.map(str::to_owned),
        workspaces: workspaces
            .iter()
            .map(|(w, r)| (w.to_string(), r.to_string()))
            .collect(),
    }
}

fn compile_with(rules: &[RuleConfig], default: Option<&DefaultConfig>) -> RuleSet {
    match RuleSet::compile(rules, default) {
        Ok(set) => set,
        Err(errors) => panic!("unexpected errors:\n{}", render(&errors)),
    }
}

fn compile(rules: &[RuleConfig]) -> RuleSet {
    compile_with(rules, None)
}

fn errors_with(rules: &[RuleConfig], default: Option<&DefaultConfig>) -> Vec<RuleError> {
    match RuleSet::compile(rules, default) {
        Ok(_) => panic!("expected compile errors"),
        Err(errors) => errors,
    }
}

fn errors(rules: &[RuleConfig]) -> Vec<RuleError> {
    errors_with(rules, None)
}

/// The single error, or a panic listing them all.
fn only_error(rules: &[RuleConfig]) -> RuleError {
    let mut errors = errors(rules);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    errors.remove(0)
}

fn render(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ada() -> PersonFacts {
    PersonFacts {
        id: "E1234".into(),
        email: Some("ada@example.com".into()),
        name: Some("Ada Lovelace".into()),
        department: Some("Engineering".into()),
        title: Some("Staff Engineer".into()),
        division: Some("R&D".into()),
        cost_center: Some("CC-42".into()),
        location: Some("London".into()),
        worker_type: Some("employee".into()),
        manager_email: Some("grace@example.com".into()),
        groups: vec!["ml-research".into()],
        attributes: json!({
            "level": "L6",
            "rank": 6,
            "tags": ["a", "b"],
            "meta": { "remote": true }
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        status: PersonStatus::Active,
        source: "hr".into(),
    }
}

/// Someone the source knows almost nothing about.
fn bare() -> PersonFacts {
    PersonFacts {
        id: "E9".into(),
        source: "hr".into(),
        ..PersonFacts::default()
    }
}

fn outcome_of(decision: &Decision, name: &str) -> Outcome {
    match decision.explanation.rules.iter().find(|r| r.name == name) {
        Some(r) => r.outcome.clone(),
        None => panic!("no outcome for {name}"),
    }
}

fn matches(when: &str, person: &PersonFacts) -> Outcome {
    let set = compile(&[rule("r", when)]);
    outcome_of(&set.evaluate(person), "r")
}

fn source(name: &str, index: usize) -> GrantSource {
    GrantSource::Rule {
        index,
        name: name.to_owned(),
    }
}

// ---- compile errors ----

#[test]
fn syntax_error_is_located_in_the_expression() {
    let e = only_error(&[
        rule("ok", "true"),
        rule("engineering", "person.department == "),
    ]);
    assert_eq!(e.kind, RuleErrorKind::Syntax);
    assert_eq!(e.location, "rules[1] \"engineering\".when");
    assert_eq!(e.expression.as_deref(), Some("person.department == "));
    let Some((line, column)) = e.position else {
        panic!("no position: {e}");
    };
    assert_eq!((line, column), (1, 22), "{e}");
    assert!(e.message.contains("Syntax error"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("rules[1] \"engineering\".when:1:22: Syntax error"),
        "{shown}"
    );
    assert!(shown.contains("\n    person.department == \n"), "{shown}");
}

#[test]
fn syntax_error_on_a_later_line() {
    let e = only_error(&[rule("multi", "person.department == \"x\"\n  && (")]);
    assert_eq!(e.kind, RuleErrorKind::Syntax);
    assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
}

#[test]
fn unknown_function_is_located_even_where_evaluation_would_not_reach() {
    // `false && ...` never calls `lookup`: only the static walk can find it.
    let e = only_error(&[rule("r", "false && lookup(person.email)")]);
    assert_eq!(e.kind, RuleErrorKind::UnknownFunction);
    assert_eq!(e.location, "rules[0] \"r\".when");
    assert_eq!(e.position, Some((1, 10)), "{e}");
    assert!(e.message.contains("'lookup'"), "{e}");

    let e = only_error(&[rule("r", "person.email.domainOf() == \"x\"")]);
    assert_eq!(e.kind, RuleErrorKind::UnknownFunction);
    assert_eq!(e.position, Some((1, 14)), "{e}");
}

#[test]
fn unknown_variable_and_unknown_person_field() {
    let errors = errors(&[rule(
        "r",
        "user.department == \"x\" || person.departmnet == \"Engineering\"",
    )]);
    assert_eq!(errors.len(), 2, "{}", render(&errors));
    assert_eq!(errors[0].kind, RuleErrorKind::UnknownVariable);
    assert_eq!(errors[0].position, Some((1, 1)));
    assert!(errors[0].message.contains("'user'"));
    assert_eq!(errors[1].kind, RuleErrorKind::UnknownPersonField);
    assert_eq!(errors[1].position, Some((1, 34)), "{}", errors[1]);
    assert!(errors[1].message.contains("'departmnet'"));

    let e = only_error(&[rule("r", "person[\"titel\"] == \"x\"")]);
    assert_eq!(e.kind, RuleErrorKind::UnknownPersonField);
}

#[test]
fn comprehension_variables_and_type_names_are_not_unknown() {
    compile(&[
        rule("a", "person.groups.exists(g, g.startsWith(\"ml-\"))"),
        rule("b", "person.groups.all(g, [g].exists(h, h == g))"),
        rule(
            "c",
            "type(person.groups) == list && type(person.name) == string",
        ),
    ]);
    // ...but they do not leak out of their comprehension.
    let e = only_error(&[rule("d", "person.groups.exists(g, true) && g == \"x\"")]);
    assert_eq!(e.kind, RuleErrorKind::UnknownVariable);
}

#[test]
fn the_standard_library_and_strings_extension_pass_the_checks() {
    let kitchen_sink = r#"
        size(person.groups) >= 0
        && person.email.endsWith("@example.com")
        && person.title.startsWith("Staff")
        && person.name.contains("Ada")
        && person.email.matches("^[a-z]+@example[.]com$")
        && person.email.lowerAscii().split("@")[1] == "example.com"
        && person.department.trim().size() > 0
        && int("5") == 5 && string(1) == "1" && dyn(1) == 1 && double(1) == 1.0
        && timestamp("2026-01-01T00:00:00Z") < timestamp("2027-01-01T00:00:00Z")
        && duration("1h") > duration("1m")
        && ["a", "b"].map(x, x + "1").filter(y, y != "").size() == 2
        && has(person.attributes.level)
        && person.attributes.?level.orValue("") == "L6"
        && optional.of(1).hasValue()
        && person["department"] == "Engineering"
        && "ml-research" in person.groups
        && person.status in ["active", "on_leave"]
    "#;
    let set = compile(&[rule("sink", kitchen_sink)]);
    assert_eq!(outcome_of(&set.evaluate(&ada()), "sink"), Outcome::Matched);
}

#[test]
fn type_errors_and_non_bool_results_are_caught_at_load() {
    let e = only_error(&[rule("r", "person.title < 1")]);
    assert_eq!(e.kind, RuleErrorKind::Type);
    assert!(e.message.contains("'_<_'"), "{e}");

    let e = only_error(&[rule("r", "person.department")]);
    assert_eq!(e.kind, RuleErrorKind::Type);
    assert!(e.message.contains("bool"), "{e}");

    // Free-form attributes may legitimately hold anything: not judged at load.
    compile(&[rule("r", "person.attributes.rank > 5")]);
    // Data-dependent failures are not type errors.
    compile(&[rule("r", "int(person.cost_center) > 5")]);
}

#[test]
fn empty_expression_and_names() {
    let errors = errors(&[rule("", "true"), rule(" x", "true"), rule("y", "  ")]);
    let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            RuleErrorKind::InvalidName,
            RuleErrorKind::InvalidName,
            RuleErrorKind::EmptyExpression
        ],
        "{}",
        render(&errors)
    );
}

#[test]
fn duplicate_rule_name() {
    let e = only_error(&[
        rule("eng", "true"),
        rule("ops", "true"),
        rule("eng", "false"),
    ]);
    assert_eq!(e.kind, RuleErrorKind::DuplicateName);
    assert_eq!(e.location, "rules[2] \"eng\".name");
    assert!(e.message.contains("rules[0]"), "{e}");
}

#[test]
fn admin_and_other_administrative_roles_are_rejected() {
    for admin in ["admin", "owner", "primary_owner", "membership_admin"] {
        let e = only_error(&[role(rule("boss", "true"), admin)]);
        assert_eq!(e.kind, RuleErrorKind::AdministrativeRole, "{admin}");
        assert_eq!(e.location, "rules[0] \"boss\".org_role");
        assert!(e.message.contains("never be assigned by automation"), "{e}");
    }
    let errors = errors_with(&[], Some(&default_grant(Some("admin"), &[])));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, RuleErrorKind::AdministrativeRole);
    assert_eq!(errors[0].location, "default.org_role");
}

#[test]
fn bad_roles_are_rejected_with_the_allowed_values() {
    let e = only_error(&[role(rule("r", "true"), "superuser")]);
    assert_eq!(e.kind, RuleErrorKind::InvalidOrgRole);
    assert!(e.message.contains("\"claude_code_user\""), "{e}");

    let e = only_error(&[ws(rule("r", "true"), "Eng", "workspace_billing")]);
    assert_eq!(e.kind, RuleErrorKind::InvalidWorkspaceRole);
    assert_eq!(e.location, "rules[0] \"r\".workspaces.\"Eng\"");
    assert!(e.message.contains("inherited"), "{e}");

    let e = only_error(&[role(ws(rule("r", "true"), "Eng", "developer"), "user")]);
    assert_eq!(e.kind, RuleErrorKind::InvalidWorkspaceRole);
    assert!(
        e.message.contains("did you mean \"workspace_developer\""),
        "{e}"
    );
}

#[test]
fn bad_workspace_names() {
    let long = "x".repeat(41);
    let r = role(rule("r", "true"), "user");
    let r = ws(
        ws(ws(r, "", "workspace_user"), &long, "workspace_user"),
        "Default",
        "workspace_user",
    );
    let errors = errors(&[
        r,
        role(
            ws(rule("ok", "true"), &"y".repeat(40), "workspace_user"),
            "user",
        ),
    ]);
    assert_eq!(errors.len(), 3, "{}", render(&errors));
    assert!(
        errors
            .iter()
            .all(|e| e.kind == RuleErrorKind::InvalidWorkspaceName)
    );
}

#[test]
fn default_with_workspaces_needs_an_org_role() {
    let errors = errors_with(
        &[],
        Some(&default_grant(None, &[("Sandbox", "workspace_user")])),
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].kind, RuleErrorKind::IncompleteGrant);
}

#[test]
fn all_errors_are_reported_at_once() {
    let errors = errors(&[
        rule("a", "person.department =="),
        role(rule("b", "nope(1)"), "admin"),
        rule("a", "true"),
        ws(role(rule("c", "true"), "user"), "Eng", "workspace_owner"),
    ]);
    let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
    for expected in [
        RuleErrorKind::Syntax,
        RuleErrorKind::AdministrativeRole,
        RuleErrorKind::UnknownFunction,
        RuleErrorKind::DuplicateName,
        RuleErrorKind::InvalidWorkspaceRole,
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing:\n{}",
            render(&errors)
        );
    }
}

#[test]
fn empty_rule_list_is_allowed() {
    let set = compile(&[]);
    let d = set.evaluate(&ada());
    assert!(d.is_no_access());
    assert_eq!(d.explanation.basis, Basis::NoMatchNoDefault);
    assert!(set.managed_workspaces().is_empty());
}

// ---- evaluation ----

fn engineering() -> RuleConfig {
    ws(
        ws(
            role(
                rule(
                    "engineering",
                    r#"person.department == "Engineering" && person.worker_type != "contractor""#,
                ),
                "developer",
            ),
            "Engineering",
            "workspace_developer",
        ),
        "Sandbox",
        "workspace_user",
    )
}

#[test]
fn the_spec_example_grants_and_explains() {
    let set = compile_with(
        &[engineering()],
        Some(&default_grant(
            Some("user"),
            &[("Sandbox", "workspace_user")],
        )),
    );
    let d = set.evaluate(&ada());
    assert_eq!(d.org_role, Some(OrgRole::Developer));
    assert_eq!(
        d.workspaces,
        BTreeMap::from([
            ("Engineering".to_owned(), WorkspaceRole::Developer),
            ("Sandbox".to_owned(), WorkspaceRole::User),
        ])
    );
    assert_eq!(d.explanation.basis, Basis::MatchedRules);
    assert_eq!(outcome_of(&d, "engineering"), Outcome::Matched);
    let org = d.explanation.org_role.as_ref().map(|a| a.source.clone());
    assert_eq!(org, Some(source("engineering", 0)));
    assert_eq!(
        d.explanation
            .workspaces
            .get("Sandbox")
            .map(|a| a.source.clone()),
        Some(source("engineering", 0))
    );

    let contractor = PersonFacts {
        worker_type: Some("contractor".into()),
        ..ada()
    };
    let d = set.evaluate(&contractor);
    assert_eq!(outcome_of(&d, "engineering"), Outcome::NotMatched);
    assert_eq!(d.explanation.basis, Basis::Default);
    assert_eq!(d.org_role, Some(OrgRole::User));
}

#[test]
fn most_privileged_org_role_wins_at_equal_priority() {
    let set = compile(&[
        role(rule("everyone", "true"), "user"),
        role(
            rule("eng", "person.department == \"Engineering\""),
            "developer",
        ),
        role(rule("coders", "true"), "claude_code_user"),
    ]);
    let d = set.evaluate(&ada());
    assert_eq!(d.org_role, Some(OrgRole::Developer));
    let a = d
        .explanation
        .org_role
        .clone()
        .unwrap_or_else(|| panic!("no attribution"));
    assert_eq!(a.source, source("eng", 1));
    let outranked: Vec<_> = a.outranked.iter().map(|c| c.role).collect();
    assert_eq!(outranked, [OrgRole::User, OrgRole::ClaudeCodeUser]);
}

#[test]
fn higher_priority_wins_even_with_less_privilege() {
    let set = compile(&[
        role(
            rule("eng", "person.department == \"Engineering\""),
            "developer",
        ),
        prio(
            ws(
                role(
                    rule("cap-contractors", "person.worker_type == \"contractor\""),
                    "user",
                ),
                "Engineering",
                "workspace_user",
            ),
            10,
        ),
        ws(
            rule("eng-ws", "person.department == \"Engineering\""),
            "Engineering",
            "workspace_admin",
        ),
    ]);
    let contractor = PersonFacts {
        worker_type: Some("contractor".into()),
        ..ada()
    };
    let d = set.evaluate(&contractor);
    assert_eq!(d.org_role, Some(OrgRole::User));
    assert_eq!(d.workspaces.get("Engineering"), Some(&WorkspaceRole::User));
    assert_eq!(
        d.explanation
            .org_role
            .as_ref()
            .map(|a| (a.source.clone(), a.priority)),
        Some((source("cap-contractors", 1), 10))
    );
    // Without the capping rule matching, the best role applies.
    let d = set.evaluate(&ada());
    assert_eq!(d.org_role, Some(OrgRole::Developer));
    assert_eq!(d.workspaces.get("Engineering"), Some(&WorkspaceRole::Admin));
}

#[test]
fn workspace_roles_merge_to_the_highest() {
    let set = compile(&[
        ws(
            ws(
                role(rule("base", "true"), "user"),
                "Sandbox",
                "workspace_user",
            ),
            "Docs",
            "workspace_user",
        ),
        ws(
            rule("ml", "\"ml-research\" in person.groups"),
            "Sandbox",
            "workspace_restricted_developer",
        ),
        ws(
            rule("eng", "person.department == \"Engineering\""),
            "Sandbox",
            "workspace_developer",
        ),
        ws(
            rule("eng-again", "person.department == \"Engineering\""),
            "Sandbox",
            "workspace_developer",
        ),
    ]);
    let d = set.evaluate(&ada());
    assert_eq!(d.workspaces.get("Sandbox"), Some(&WorkspaceRole::Developer));
    assert_eq!(d.workspaces.get("Docs"), Some(&WorkspaceRole::User));
    let sandbox = d.explanation.workspaces.get("Sandbox").cloned();
    let sandbox = sandbox.unwrap_or_else(|| panic!("no attribution"));
    // The earliest rule granting the winning role is credited; the rest are listed.
    assert_eq!(sandbox.source, source("eng", 2));
    assert_eq!(sandbox.outranked.len(), 3);
}

#[test]
fn billing_tie_is_settled_by_file_order_and_noted() {
    let finance = role(rule("finance", "true"), "billing");
    let eng = role(rule("eng", "true"), "developer");

    let d = compile(&[finance.clone(), eng.clone()]).evaluate(&ada());
    assert_eq!(d.org_role, Some(OrgRole::Billing));
    assert!(
        d.explanation
            .notes
            .iter()
            .any(|n| n.contains("not comparable")),
        "{d}"
    );

    let d = compile(&[eng.clone(), finance.clone()]).evaluate(&ada());
    assert_eq!(d.org_role, Some(OrgRole::Developer));

    // An explicit priority decides without a tie.
    let d = compile(&[eng, prio(finance, 1)]).evaluate(&ada());
    assert_eq!(d.org_role, Some(OrgRole::Billing));
    assert!(d.explanation.notes.is_empty(), "{d}");
}

#[test]
fn evaluation_is_deterministic() {
    let set = compile(&[
        role(rule("a", "true"), "billing"),
        ws(role(rule("b", "true"), "developer"), "W", "workspace_admin"),
        ws(role(rule("c", "true"), "user"), "W", "workspace_admin"),
    ]);
    let first = set.evaluate(&ada());
    for _ in 0..20 {
        assert_eq!(set.evaluate(&ada()), first);
    }
}

#[test]
fn missing_fields_are_empty_strings_and_empty_collections() {
    let nobody = bare();
    assert_eq!(
        matches("person.department == \"Engineering\"", &nobody),
        Outcome::NotMatched
    );
    assert_eq!(
        matches("person.department == \"\"", &nobody),
        Outcome::Matched
    );
    assert_eq!(
        matches("person.title.startsWith(\"Staff\")", &nobody),
        Outcome::NotMatched
    );
    assert_eq!(
        matches("size(person.groups) == 0", &nobody),
        Outcome::Matched
    );
    assert_eq!(
        matches("person.status == \"active\"", &nobody),
        Outcome::Matched
    );
    assert_eq!(
        matches("person.source == \"hr\"", &nobody),
        Outcome::Matched
    );
    assert_eq!(
        matches("has(person.attributes.level)", &nobody),
        Outcome::NotMatched
    );
    assert_eq!(
        matches("has(person.attributes.level)", &ada()),
        Outcome::Matched
    );
    assert_eq!(
        matches(
            "person.attributes.?level.orValue(\"none\") == \"none\"",
            &nobody
        ),
        Outcome::Matched
    );
}

#[test]
fn group_membership() {
    assert_eq!(
        matches("\"ml-research\" in person.groups", &ada()),
        Outcome::Matched
    );
    assert_eq!(
        matches("\"eng\" in person.groups", &ada()),
        Outcome::NotMatched
    );
    assert_eq!(
        matches("\"eng\" in person.groups", &bare()),
        Outcome::NotMatched
    );
    assert_eq!(
        matches("person.groups.exists(g, g.startsWith(\"ml-\"))", &ada()),
        Outcome::Matched
    );
}

#[test]
fn attributes_map_values_keep_their_json_types() {
    let p = ada();
    assert_eq!(
        matches("person.attributes.level == \"L6\"", &p),
        Outcome::Matched
    );
    assert_eq!(matches("person.attributes.rank >= 5", &p), Outcome::Matched);
    assert_eq!(
        matches("person.attributes.meta.remote", &p),
        Outcome::Matched
    );
    assert_eq!(
        matches("\"b\" in person.attributes.tags", &p),
        Outcome::Matched
    );
    assert_eq!(
        matches("person.attributes[\"level\"] == \"L6\"", &p),
        Outcome::Matched
    );
}

#[test]
fn runtime_errors_are_reported_not_raised() {
    let set = compile_with(
        &[
            role(
                rule("typed", "person.attributes.rank > \"five\""),
                "developer",
            ),
            role(
                rule("missing", "person.attributes.clearance == \"top\""),
                "developer",
            ),
            role(rule("odd", "person.attributes.rank"), "developer"),
            role(rule("fine", "person.department == \"Engineering\""), "user"),
        ],
        Some(&default_grant(Some("claude_code_user"), &[])),
    );
    let d = set.evaluate(&ada());
    for name in ["typed", "missing", "odd"] {
        assert!(
            matches!(outcome_of(&d, name), Outcome::Error { .. }),
            "{name}: {d}"
        );
    }
    assert_eq!(outcome_of(&d, "fine"), Outcome::Matched);
    let Outcome::Error { message } = outcome_of(&d, "missing") else {
        panic!("{d}");
    };
    assert!(
        message.contains("clearance") && message.contains("has()"),
        "{message}"
    );
    // Errored rules count as not matched; the one that matched decides.
    assert_eq!(d.org_role, Some(OrgRole::User));
    assert!(d.to_string().contains("error (not matched)"), "{d}");

    // If nothing matches because of errors, the default applies.
    let d = set.evaluate(&bare());
    assert_eq!(d.explanation.basis, Basis::Default);
    assert_eq!(d.org_role, Some(OrgRole::ClaudeCodeUser));
}

#[test]
fn default_applies_only_when_no_rule_matched() {
    let default = default_grant(Some("user"), &[("Sandbox", "workspace_user")]);
    let set = compile_with(
        &[
            engineering(),
            rule("nothing-for-interns", "person.title == \"Intern\""),
        ],
        Some(&default),
    );

    let d = set.evaluate(&bare());
    assert_eq!(d.explanation.basis, Basis::Default);
    assert_eq!(d.org_role, Some(OrgRole::User));
    assert_eq!(d.workspaces.get("Sandbox"), Some(&WorkspaceRole::User));
    assert_eq!(
        d.explanation.org_role.as_ref().map(|a| a.source.clone()),
        Some(GrantSource::Default)
    );

    // A matching rule that grants nothing keeps the person out of the default.
    let intern = PersonFacts {
        title: Some("Intern".into()),
        ..bare()
    };
    let d = set.evaluate(&intern);
    assert_eq!(d.explanation.basis, Basis::MatchedRules);
    assert!(d.is_no_access(), "{d}");
}

#[test]
fn no_default_means_no_access() {
    let set = compile(&[engineering()]);
    let d = set.evaluate(&bare());
    assert!(d.is_no_access());
    assert_eq!(d.org_role, None);
    assert_eq!(d.explanation.basis, Basis::NoMatchNoDefault);
}

#[test]
fn departed_people_get_nothing() {
    let set = compile_with(&[engineering()], Some(&default_grant(Some("user"), &[])));
    let leaver = PersonFacts {
        status: PersonStatus::Departed,
        ..ada()
    };
    let d = set.evaluate(&leaver);
    assert!(d.is_no_access(), "{d}");
    assert_eq!(d.explanation.basis, Basis::Departed);
    // Rules are still evaluated and reported, for the journal.
    assert_eq!(outcome_of(&d, "engineering"), Outcome::Matched);

    let on_leave = PersonFacts {
        status: PersonStatus::OnLeave,
        ..ada()
    };
    assert_eq!(
        matches("person.status == \"on_leave\"", &on_leave),
        Outcome::Matched
    );
}

#[test]
fn workspaces_without_an_org_role_are_withheld() {
    let set = compile(&[ws(rule("ws-only", "true"), "Sandbox", "workspace_user")]);
    let d = set.evaluate(&ada());
    assert!(d.is_no_access(), "{d}");
    assert!(
        d.explanation.notes.iter().any(|n| n.contains("Sandbox")),
        "{d}"
    );
}

#[test]
fn managed_workspaces_are_every_named_workspace() {
    let set = compile_with(
        &[
            engineering(),
            ws(rule("ops", "false"), "Ops", "workspace_admin"),
        ],
        Some(&default_grant(Some("user"), &[("Lobby", "workspace_user")])),
    );
    let managed: Vec<String> = set.managed_workspaces().into_iter().collect();
    assert_eq!(managed, ["Engineering", "Lobby", "Ops", "Sandbox"]);
}

#[test]
fn decision_serializes_with_wire_names() {
    let set = compile(&[engineering()]);
    let value = serde_json::to_value(set.evaluate(&ada())).unwrap_or_default();
    assert_eq!(value["org_role"], "developer");
    assert_eq!(value["workspaces"]["Engineering"], "workspace_developer");
    assert_eq!(value["explanation"]["basis"], "matched_rules");
    assert_eq!(
        value["explanation"]["rules"][0]["outcome"]["result"],
        "matched"
    );
    assert_eq!(value["explanation"]["org_role"]["source"]["from"], "rule");
}

#[test]
fn config_sections_deserialize_and_reject_unknown_fields() {
    #[derive(serde::Deserialize)]
    struct Sections {
        #[serde(default)]
        rules: Vec<RuleConfig>,
        default: Option<DefaultConfig>,
    }
    let text = r#"
        [[rules]]
        name = "engineering"
        when = 'person.department == "Engineering" && person.worker_type != "contractor"'
        org_role = "developer"
        workspaces = { "Engineering" = "workspace_developer", "Sandbox" = "workspace_user" }
        priority = 10

        [default]
        org_role = "user"
        workspaces = { "Sandbox" = "workspace_user" }
    "#;
    let sections: Sections = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sections.rules.len(), 1);
    assert_eq!(sections.rules[0].priority, 10);
    let set = compile_with(&sections.rules, sections.default.as_ref());
    assert_eq!(set.rules()[0].grant().org_role, Some(OrgRole::Developer));
    assert_eq!(
        set.default_grant().and_then(|g| g.org_role),
        Some(OrgRole::User)
    );

    let typo = "[[rules]]\nname = \"x\"\nwhen = \"true\"\norg_rol = \"user\"\n";
    let err = toml::from_str::<Sections>(typo)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("org_rol")));
}

#[test]
fn rule_set_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
}
