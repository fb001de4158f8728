//! The User Sync lifecycle, one scenario per behaviour, through the real binary against the
//! simulator over several simulated days (`--now`).

mod common;

use common::*;
use serde_json::{Value, json};

const HEADER: &str = "Employee ID,Email,First name,Last name,Job title,Phone,Location,Department,Start date,End date,UPN\n";

/// A config with dates, phone and UPN columns; `policy` is the YAML under `policy:`.
fn lifecycle_repo(sim: &Sim, policy: &str, rows: &str) -> ConfigRepo {
    let repo = ConfigRepo::new();
    repo.write(
        "sync.yaml",
        &format!(
            r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "{NETWORK}"
speakap: {{ url: "{url}", requests_per_second: 1000 }}
source:
  type: csv
  path: hr.csv
  date_format: "%d-%m-%Y"
  columns:
    xid: Employee ID
    email: Email
    first_name: First name
    last_name: Last name
    job_title: Job title
    phone: Phone
    locations: Location
    departments: Department
    start_date: Start date
    end_date: End date
    upn: UPN
policy:
  safety: {{ max_offboard_percent: 100, max_change_percent: 100, min_records: 1 }}
{policy}"#,
            url = sim.url
        ),
    );
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HEADER}{rows}"));
    repo.commit("config");
    repo
}

fn empty_seed() -> Value {
    json!({"groups": seed_groups(), "users": []})
}

const ANNA: &str =
    "100,anna@example.com,Anna,Smit,Baker,+31600000001,N,1,01-01-2020,,anna@corp.example\n";
const BERT: &str =
    "101,bert@example.com,Bert,Bos,Baker,+31600000002,N,1,01-01-2020,,bert@corp.example\n";

struct Day<'a> {
    repo: &'a ConfigRepo,
}

impl Day<'_> {
    fn plan(&self, date: &str) -> String {
        let output = run(
            &["plan", "--repo", &path_str(self.repo.path()), "--now", date],
            self.repo.path(),
        );
        assert!(
            matches!(code(&output), 0 | 2),
            "{}{}",
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    fn apply(&self, date: &str) -> String {
        let output = run(
            &[
                "apply",
                "--adopt",
                "--repo",
                &path_str(self.repo.path()),
                "--now",
                date,
            ],
            self.repo.path(),
        );
        assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
        stdout(&output)
    }

    fn hr(&self, rows: &str) {
        self.repo.write("hr.csv", &format!("{HEADER}{rows}"));
    }
}

#[test]
fn joiner_with_a_future_start_date_is_scheduled_then_invited_on_that_day() {
    let sim = Sim::start(&empty_seed());
    let carla = "102,carla@example.com,Carla,Kok,Baker,,S,1,01-12-2026,,\n";
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{carla}"));
    let day = Day { repo: &repo };

    let plan = day.plan("2026-11-21");
    assert!(plan.contains("Scheduled (1)"), "{plan}");
    assert!(
        plan.contains("102 Carla Kok  invite on 2026-12-01"),
        "{plan}"
    );
    day.apply("2026-11-21");
    assert!(
        sim.user_by_xid("102").is_none(),
        "not invited before the start date"
    );

    day.apply("2026-12-01");
    assert!(
        sim.user_by_xid("102").is_some(),
        "invited on the start date"
    );
}

#[test]
fn leaver_is_suspended_then_deleted_once_the_grace_period_has_passed() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");

    day.hr(ANNA);
    let plan = day.plan("2026-11-02");
    assert!(plan.contains("- suspend 101 Bert Bos"), "{plan}");
    assert!(
        plan.contains("not in the HR record; recoverable until 2026-12-02"),
        "{plan}"
    );
    day.apply("2026-11-02");
    assert_eq!(sim.user_by_xid("101").unwrap()["status"], "suspended");

    let plan = day.plan("2026-11-20");
    assert!(
        plan.contains("101 Bert Bos  suspended since 2026-11-02, deleted on 2026-12-02"),
        "{plan}"
    );
    assert!(plan.contains("No changes"), "{plan}");

    let plan = day.plan("2026-12-02");
    assert!(plan.contains("- delete 101 Bert Bos"), "{plan}");
    assert!(
        plan.contains("suspended since 2026-11-02; the grace period ended on 2026-12-02"),
        "{plan}"
    );
    day.apply("2026-12-02");
    assert!(sim.user_by_xid("101").is_none(), "deleted");
    assert!(day.plan("2026-12-03").contains("No changes"));
}

#[test]
fn leaver_is_anonymized_when_the_policy_says_so() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(
        &sim,
        "  offboarding: { grace_days: 7, then: anonymize }\n",
        &format!("{ANNA}{BERT}"),
    );
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    let eid = sim.user_by_xid("101").unwrap()["EID"]
        .as_str()
        .unwrap()
        .to_string();
    day.hr(ANNA);
    day.apply("2026-11-02");
    assert!(day.plan("2026-11-08").contains("anonymized on 2026-11-09"));
    let plan = day.plan("2026-11-09");
    assert!(plan.contains("- anonymize 101 Bert Bos"), "{plan}");
    let applied = day.apply("2026-11-09");
    assert!(applied.contains(" 0 deleted, 1 anonymized,"), "{applied}");
    assert!(
        sim.users().iter().all(|u| u["EID"] != eid.as_str()),
        "the anonymized account is gone"
    );
}

#[test]
fn end_date_passed_offboards_the_day_after() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    day.hr(&format!(
        "{ANNA}{}",
        BERT.replace(",01-01-2020,,", ",01-01-2020,30-11-2026,")
    ));
    assert!(
        day.plan("2026-11-30").contains("No changes"),
        "still employed on the last day"
    );
    let plan = day.plan("2026-12-01");
    assert!(plan.contains("- suspend 101 Bert Bos"), "{plan}");
    assert!(plan.contains("end date 2026-11-30 has passed"), "{plan}");

    // A hire called off: the end date comes before the start date; never scheduled or invited.
    day.hr(&format!(
        "{ANNA}{BERT}102,carla@example.com,Carla,Kok,Baker,,N,1,15-12-2026,10-12-2026,\n"
    ));
    // Match the name, not the XID: "102" can occur in the plan's checksum.
    let plan = day.plan("2026-11-20");
    assert!(plan.contains("No changes"), "{plan}");
    assert!(!plan.contains("Carla"), "{plan}");
}

#[test]
fn returner_within_the_grace_period_is_restored_not_invited_again() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    let eid = sim.user_by_xid("101").unwrap()["EID"].clone();
    day.hr(ANNA);
    day.apply("2026-11-02");

    day.hr(&format!("{ANNA}{}", BERT.replace("Baker", "Store Manager")));
    let plan = day.plan("2026-11-15");
    assert!(plan.contains("+ restore 101 Bert Bos"), "{plan}");
    assert!(
        plan.contains("back in the HR record; suspended since 2026-11-02"),
        "{plan}"
    );
    assert!(!plan.contains("invite 101"), "{plan}");
    day.apply("2026-11-15");
    let bert = sim.user_by_xid("101").unwrap();
    assert_eq!(bert["EID"], eid, "the same account");
    assert_eq!(bert["status"], "active");
    assert_eq!(
        sim.group_names(&bert),
        ["Bakery", "Managers", "Store North (admin)"]
    );
    assert_eq!(sim.users().len(), 2);
}

#[test]
fn a_leaver_rehired_for_a_later_day_comes_back_on_that_day() {
    let sim = Sim::start(&empty_seed());
    let carla = "102,carla@example.com,Carla,Kok,Baker,+31600000003,N,1,01-01-2020,,\n";
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}{carla}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    let carla_eid = sim.user_by_xid("102").unwrap()["EID"].clone();
    day.hr(ANNA);
    day.apply("2026-11-02");

    // Bert is rehired from 20 November, within his grace period: his account is restored on
    // that day. Carla from 1 March, after hers: she is offboarded as usual meanwhile, then
    // invited anew.
    day.hr(&format!(
        "{ANNA}{}{}",
        BERT.replace("01-01-2020", "20-11-2026"),
        carla.replace("01-01-2020", "01-03-2027")
    ));
    let plan = day.plan("2026-11-10");
    assert!(
        plan.contains("101 Bert Bos  restore on 2026-11-20"),
        "{plan}"
    );
    assert!(
        plan.contains("102 Carla Kok  invite on 2027-03-01"),
        "{plan}"
    );
    assert!(!plan.contains("+ restore"), "{plan}");
    day.apply("2026-11-10");
    assert_eq!(sim.user_by_xid("101").unwrap()["status"], "suspended");

    let plan = day.plan("2026-11-20");
    assert!(plan.contains("+ restore 101 Bert Bos"), "{plan}");
    day.apply("2026-11-20");
    assert_eq!(sim.user_by_xid("101").unwrap()["status"], "active");

    let plan = day.plan("2026-12-03");
    assert!(plan.contains("- delete 102 Carla Kok"), "{plan}");
    day.apply("2026-12-03");
    assert!(sim.user_by_xid("102").is_none());
    let plan = day.plan("2027-03-01");
    assert!(plan.contains("+ invite 102 Carla Kok"), "{plan}");
    day.apply("2027-03-01");
    assert_ne!(sim.user_by_xid("102").unwrap()["EID"], carla_eid);
}

#[test]
fn memberships_and_rights_granted_by_hand_are_never_taken_over_by_the_sync() {
    let sim = Sim::start(&json!({"groups": seed_groups(), "users": [
        {"xid": "100", "email": "anna@example.com", "firstName": "Anna", "familyName": "Smit", "jobTitle": "Baker",
         "phone": "+31600000001", "groups": ["Store North", "Bakery"]},
        {"xid": "101", "email": "bert@example.com", "firstName": "Bert", "familyName": "Bos", "jobTitle": "Baker",
         "phone": "+31600000002", "groups": ["Bakery", "Managers"], "adminOf": ["Store North"]}
    ]}));
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    // Bert becomes a store manager: Managers and the local admin right he was given by hand
    // are now wanted too; then he is a baker again.
    day.hr(&format!("{ANNA}{}", BERT.replace("Baker", "Store Manager")));
    day.apply("2026-11-03");
    day.hr(&format!("{ANNA}{BERT}"));
    let plan = day.plan("2026-11-04");
    assert!(plan.contains("+ job_title: Baker"), "{plan}");
    assert!(
        !plan.contains("Managers") && !plan.contains("admin"),
        "{plan}"
    );
    // Anna is given Managers by the sync (her first store manager days), then loses it.
    day.hr(&format!("{}{BERT}", ANNA.replace("Baker", "Store Manager")));
    day.apply("2026-11-05");
    day.hr(&format!("{ANNA}{BERT}"));
    let plan = day.plan("2026-11-06");
    assert!(plan.contains("- group \"Managers\""), "{plan}");
    let bert = sim.user_by_xid("101").unwrap();
    assert_eq!(
        sim.group_names(&bert),
        ["Bakery", "Managers", "Store North (admin)"]
    );
}

#[test]
fn manual_deletion_is_respected_until_the_record_changes_or_an_override_restores() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    delete_by_hand(&sim, "101");

    let plan = day.plan("2026-11-03");
    assert!(plan.contains("Deleted outside sync (1)"), "{plan}");
    assert!(plan.contains("101 Bert Bos  (HR line 3)"), "{plan}");
    assert!(plan.contains("No changes"), "{plan}");

    // An override asks for the account back.
    repo.write("overrides.yaml", "apiVersion: speakap-sync/v1\nkind: Overrides\noverrides:\n  - xid: \"101\"\n    reason: deleted by mistake (IT-77)\n    restore: true\n");
    repo.commit("restore Bert");
    let plan = day.plan("2026-11-03");
    assert!(plan.contains("+ invite 101 Bert Bos"), "{plan}");
    assert!(plan.contains("an override says restore: true"), "{plan}");

    // Without the override, a change in HR brings it back too.
    repo.remove("overrides.yaml");
    day.hr(&format!(
        "{ANNA}{}",
        BERT.replace("+31600000002", "+31600000099")
    ));
    repo.commit("no override");
    let plan = day.plan("2026-11-03");
    assert!(
        plan.contains("the HR record or the rules' outcome changed since"),
        "{plan}"
    );
    day.apply("2026-11-03");
    assert!(sim.user_by_xid("101").is_some());
}

fn delete_by_hand(sim: &Sim, xid: &str) {
    let user = sim.user_by_xid(xid).unwrap();
    let membership = user["_embedded"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m.get("group").is_none())
        .unwrap()["EID"]
        .as_str()
        .unwrap()
        .to_string();
    let request = sim.api(
        reqwest::Method::DELETE,
        &format!("memberships/{membership}/?resolution=remove_from_network"),
    );
    let status = runtime().block_on(async { request.send().await.unwrap().status() });
    assert_eq!(status.as_u16(), 202);
}

#[test]
fn exclusions_never_offboard_even_when_the_record_is_gone() {
    let seed = json!({"groups": seed_groups(), "users": [
        {"xid": "900", "email": "ceo@example.com", "firstName": "Chief", "familyName": "Exec", "role": "admin"}
    ]});
    let sim = Sim::start(&seed);
    let repo = lifecycle_repo(&sim, "", ANNA);
    repo.write("exclusions.yaml", "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude:\n  - xid: \"900\"\n    reason: manages own account\n  - xid: \"0900\"\n    reason: a typo\n");
    repo.commit("exclude the CEO");
    let day = Day { repo: &repo };
    let plan = day.plan("2026-11-02");
    assert!(
        plan.contains(
            "exclusion for XID 0900 (exclusions.yaml:6) matches no HR record and no account"
        ),
        "{plan}"
    );
    assert!(!plan.contains("exclusion for XID 900 "), "{plan}");
    assert!(plan.contains("Unmanaged (1)"), "{plan}");
    assert!(
        plan.contains("900  excluded: manages own account (exclusions.yaml:4)"),
        "{plan}"
    );
    assert!(!plan.contains("suspend 900"), "{plan}");
    day.apply("2026-11-02");
    assert_eq!(sim.user_by_xid("900").unwrap()["status"], "active");
}

#[test]
fn expired_and_orphaned_overrides_are_warned_about() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", ANNA);
    repo.write(
        "overrides.yaml",
        "apiVersion: speakap-sync/v1\nkind: Overrides\noverrides:\n  - xid: \"100\"\n    reason: cover\n    until: 2026-10-31\n    add_groups: [Managers]\n  - xid: \"555\"\n    reason: gone\n    role: admin\n",
    );
    repo.commit("overrides");
    let plan = Day { repo: &repo }.plan("2026-11-02");
    assert!(
        plan.contains(
            "override for XID 100 (overrides.yaml:4) expired on 2026-10-31 and is ignored"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("override for XID 555 (overrides.yaml:8) has no record in the HR file"),
        "{plan}"
    );
    assert!(!plan.contains("Managers"), "{plan}");
}

#[test]
fn an_override_taking_away_the_primary_business_unit_moves_it_to_the_next() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &ANNA.replace(",N,1,", ",N|S,1,"));
    repo.write(
        "overrides.yaml",
        "apiVersion: speakap-sync/v1\nkind: Overrides\noverrides:\n  - xid: \"100\"\n    reason: works only in the south store\n    remove_groups: [Store North]\n",
    );
    repo.commit("override");
    let plan = Day { repo: &repo }.plan("2026-11-02");
    assert!(
        plan.contains("~ primary business unit \"Store South\""),
        "{plan}"
    );
    assert!(!plan.contains("\"Store North\""), "{plan}");
}

#[test]
fn an_xid_change_is_blocked_by_default_and_relinked_when_the_policy_says_so() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    let eid = sim.user_by_xid("101").unwrap()["EID"].clone();

    // HR renumbers Bert from 101 to 201.
    day.hr(&format!("{ANNA}{}", BERT.replace("101,", "201,")));
    let plan = day.plan("2026-11-03");
    assert!(
        plan.contains("looks like an XID change: the account with this email address has XID 101"),
        "{plan}"
    );
    assert!(
        plan.contains("No changes"),
        "neither invited nor offboarded: {plan}"
    );

    repo.write(
        "sync.yaml",
        &std::fs::read_to_string(repo.path().join("sync.yaml"))
            .unwrap()
            .replace("policy:\n", "policy:\n  xid_change: relink\n"),
    );
    repo.commit("relink");
    let plan = day.plan("2026-11-03");
    assert!(plan.contains("- xid: 101\n      + xid: 201"), "{plan}");
    day.apply("2026-11-03");
    assert_eq!(
        sim.user_by_xid("201").unwrap()["EID"],
        eid,
        "the same account, new XID"
    );
    assert_eq!(sim.users().len(), 2);

    // A leaver the sync suspended, rehired under a new number: restored and relinked.
    day.hr(ANNA);
    day.apply("2026-11-04");
    assert_eq!(sim.user_by_xid("201").unwrap()["status"], "suspended");
    day.hr(&format!("{ANNA}{}", BERT.replace("101,", "301,")));
    let plan = day.plan("2026-11-10");
    assert!(plan.contains("+ restore 301 Bert Bos"), "{plan}");
    assert!(plan.contains("- xid: 201\n      + xid: 301"), "{plan}");
    day.apply("2026-11-10");
    let bert = sim.user_by_xid("301").unwrap();
    assert_eq!((&bert["EID"], &bert["status"]), (&eid, &json!("active")));
    assert!(day.plan("2026-11-11").contains("No changes"));
}

#[test]
fn unprocessable_records_are_reported_and_their_accounts_left_alone() {
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    day.hr(&format!(
        "{ANNA}{}",
        BERT.replace(",01-01-2020,,", ",2020/01/01,,")
    ));
    let plan = day.plan("2026-11-03");
    assert!(plan.contains("hr.csv:3  XID 101: unparseable start date \"2020/01/01\" (column \"Start date\"; expected the format %d-%m-%Y)"), "{plan}");
    assert!(plan.contains("No changes"), "{plan}");

    // A job title far longer than any (a column run together with the rest of the file).
    let long = "Baker ".repeat(100);
    day.hr(&format!(
        "{ANNA}{}",
        BERT.replace(",Baker,", &format!(",{long},"))
    ));
    let plan = day.plan("2026-11-03");
    assert!(
        plan.contains("XID 101: the value in column \"Job title\" is 599 characters long; at most 255 are read"),
        "{plan}"
    );
    assert!(plan.contains("No changes"), "{plan}");
}

#[test]
fn a_quote_not_closed_or_a_missing_xid_never_offboards_the_people_it_hides() {
    let sim = Sim::start(&empty_seed());
    let person = |xid: u32, name: &str| {
        format!("{xid},{name}@example.com,{name},Smit,Baker,+31600000009,N,1,01-01-2020,,\n")
    };
    let (carla, dirk, erik) = (
        person(102, "carla"),
        person(103, "dirk"),
        person(104, "erik"),
    );
    let repo = lifecycle_repo(&sim, "", &format!("{ANNA}{BERT}{carla}{dirk}{erik}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    // Bert's address opens a quote that Dirk's closes, so Carla's row is inside one value;
    // Erik's employee ID is missing.
    day.hr(&format!(
        "{ANNA}{}{carla}{}{}",
        BERT.replacen(",bert@", ",\"bert@", 1),
        dirk.replace("dirk@example.com,", "dirk@example.com\","),
        erik.replacen("104", "", 1)
    ));
    let plan = day.plan("2026-11-03");
    for expected in [
        "hr.csv:3  XID 101: the value in column \"Email\" runs over several lines that look like rows",
        "hr.csv:4  XID 102: not offboarded: this account's XID or email address is on this line, which is inside a value that starts on line 3",
        "hr.csv:5  XID 103: not offboarded",
        "hr.csv:6  no XID: missing employee ID",
        "hr.csv:6  XID 104: not offboarded: this account's XID or email address is on this line, whose row could not be read",
        "No changes",
    ] {
        assert!(plan.contains(expected), "{expected}\n{plan}");
    }
    day.apply("2026-11-03");
    for xid in ["100", "101", "102", "103", "104"] {
        let user = sim.user_by_xid(xid).unwrap();
        assert_eq!(user["status"], "active", "{xid}: {user}");
    }
}

#[test]
fn an_address_an_account_has_besides_its_primary_one_is_never_given_to_someone_else() {
    let sim = Sim::start(&json!({"groups": seed_groups(), "users": [
        {"email": "comms@example.com", "otherEmails": ["nina@example.com"], "familyName": "Comms", "role": "admin"},
        {"xid": "100", "email": "anna@example.com", "otherEmails": ["anna.home@example.com"],
         "firstName": "Anna", "familyName": "Smit", "jobTitle": "Baker", "phone": "+31600000001", "groups": ["Store North", "Bakery"]},
        {"xid": "101", "email": "bert@example.com", "firstName": "Bert", "familyName": "Bos", "jobTitle": "Baker", "phone": "+31600000002", "groups": ["Store North", "Bakery"]},
        {"xid": "103", "email": "dirk@example.com", "familyName": "Dekker", "groups": ["Store North"]}
    ]}));
    let nina = "102,nina@example.com,Nina,Smit,Baker,+31600000009,N,1,01-01-2020,,\n";
    // Bert's address changes to one of Anna's; Nina is new with an address of the comms
    // account; Dirk has left.
    let rows = format!(
        "{ANNA}{}{nina}",
        BERT.replace("bert@example.com", "anna.home@example.com")
    );
    let repo = lifecycle_repo(&sim, "", &rows);
    let day = Day { repo: &repo };
    let plan = day.plan("2026-11-02");
    for expected in [
        "hr.csv:4  XID 102: email address is an address of account",
        "XID 101: email address not changed to a*******e@example.com: account",
        "- suspend 103",
    ] {
        assert!(plan.contains(expected), "{expected}\n{plan}");
    }
    assert!(!plan.contains("+ invite"), "{plan}");
    day.apply("2026-11-02");
    let comms = sim
        .users()
        .into_iter()
        .find(|u| u["primaryEmail"] == "comms@example.com")
        .unwrap();
    assert_eq!(comms["XID"], Value::Null, "{comms}");
    assert_eq!(
        sim.user_by_xid("101").unwrap()["primaryEmail"],
        "bert@example.com"
    );
    assert_eq!(sim.user_by_xid("103").unwrap()["status"], "suspended");
}

#[test]
fn invitations_go_by_the_configured_channel() {
    // SMS needs a phone number; the record without one is reported, not invited.
    let sim = Sim::start(&empty_seed());
    let no_phone = "102,carla@example.com,Carla,Kok,Baker,,S,1,01-01-2020,,\n";
    let repo = lifecycle_repo(
        &sim,
        "  invite: { channel: sms }\n",
        &format!("{ANNA}{no_phone}"),
    );
    let day = Day { repo: &repo };
    let plan = day.plan("2026-11-02");
    assert!(
        plan.contains("XID 102: cannot invite by SMS: no phone number"),
        "{plan}"
    );
    day.apply("2026-11-02");
    assert_eq!(
        sim.user_by_xid("100").unwrap()["telephoneNumbers"][0],
        "+31600000001"
    );

    // SSO accounts are created for the UPN, active at once.
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "  invite: { channel: sso }\n", ANNA);
    Day { repo: &repo }.apply("2026-11-02");
    assert_eq!(
        Sim::network_role(&sim.user_by_xid("100").unwrap()),
        "member",
        "no invitation pending"
    );

    // Printable credentials go to a file only, never to stdout or the audit trail.
    let sim = Sim::start(&empty_seed());
    let repo = lifecycle_repo(&sim, "  invite: { channel: printable }\n", ANNA);
    let dir = path_str(repo.path());
    let refused = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&refused), 1);
    assert!(stderr(&refused).contains("pass --credentials FILE"));
    let codes = repo.path().join("codes.csv");
    let applied = run(
        &[
            "apply",
            "--adopt",
            "--repo",
            &dir,
            "--credentials",
            &path_str(&codes),
        ],
        repo.path(),
    );
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    let written = std::fs::read_to_string(&codes).unwrap();
    let activation = written
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(activation.len(), 10);
    assert!(!stdout(&applied).contains(&activation) && !stderr(&applied).contains(&activation));
    assert!(
        !repo
            .state_file("apply.json")
            .unwrap()
            .to_string()
            .contains(&activation)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&codes).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn explain_tells_what_happens_to_one_person_and_why() {
    let sim = Sim::start(&empty_seed());
    let bad = "103,,Dirk,Mol,Baker,,N,1,01-01-2020,,\n";
    let repo = lifecycle_repo(
        &sim,
        "",
        &format!("{}{BERT}{bad}", ANNA.replace("Baker", "Store Manager")),
    );
    let dir = path_str(repo.path());
    let explain = |xid: &str| {
        stdout(&run(
            &["explain", xid, "--repo", &dir, "--now", "2026-11-02"],
            repo.path(),
        ))
    };

    let anna = explain("100");
    assert!(anna.contains("HR record: hr.csv:2"), "{anna}");
    assert!(anna.contains("  Job title: Store Manager"), "{anna}");
    assert!(
        anna.contains("local admin of \"Store North\"  local_admins rule (rules.yaml:18)"),
        "{anna}"
    );
    assert!(
        anna.contains("Speakap account: none with this XID"),
        "{anna}"
    );
    assert!(anna.contains("+ invite 100 Anna Smit"), "{anna}");

    let dirk = explain("103");
    assert!(
        dirk.contains("nothing: the record on line 4 is skipped: missing email address"),
        "{dirk}"
    );

    Day { repo: &repo }.apply("2026-11-02");
    let bert = explain("101");
    assert!(
        bert.contains("group \"Store North\" as member  managed by the sync"),
        "{bert}"
    );
    assert!(
        bert.contains("nothing: the account matches the HR record and the rules"),
        "{bert}"
    );
    assert!(explain("999").contains("nothing: not in the HR record and no account"));

    // Excluded while in HR, with no account.
    repo.write(
        "exclusions.yaml",
        "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude:\n  - xid: \"104\"\n    reason: Board member\n",
    );
    repo.commit("exclusion");
    let day = Day { repo: &repo };
    day.hr(&format!(
        "{}{BERT}104,eva@example.com,Eva,Bos,Board,,N,1,01-01-2020,,\n",
        ANNA.replace("Baker", "Store Manager")
    ));
    let eva = explain("104");
    assert!(
        eva.contains("nothing: excluded (Board member); the sync never invites"),
        "{eva}"
    );
    // Renumbered in HR: the old XID's account is held back by the new record.
    day.hr(&format!(
        "{}{}",
        ANNA.replace("Baker", "Store Manager"),
        BERT.replace("101,", "201,")
    ));
    let old = explain("101");
    assert!(
        old.contains(
            "nothing: held back by the record on line 3 (XID 201): looks like an XID change"
        ),
        "{old}"
    );

    // A column feeding an `extra` field beside a profile field is shown once.
    let sync = std::fs::read_to_string(repo.path().join("sync.yaml")).unwrap();
    repo.write(
        "sync.yaml",
        &sync.replace(
            "    upn: UPN\n",
            "    upn: UPN\n    extra: { site: Location }\n",
        ),
    );
    repo.commit("extra column");
    let anna = explain("100");
    assert_eq!(anna.matches("  Location: N").count(), 1, "{anna}");
}

#[test]
fn explain_shows_the_account_found_by_email_for_a_person_without_one_by_xid() {
    let sim = Sim::start(&json!({"groups": seed_groups(), "users": [
        {"email": "anna@example.com", "firstName": "Anna", "familyName": "Smit", "groups": ["Store North"]}
    ]}));
    let repo = lifecycle_repo(&sim, "", ANNA);
    let explained = stdout(&run(
        &[
            "explain",
            "100",
            "--repo",
            &path_str(repo.path()),
            "--now",
            "2026-11-02",
        ],
        repo.path(),
    ));
    assert!(
        explained
            .contains("(active, network role member, no XID yet, found by its email address):"),
        "{explained}"
    );
    assert!(explained.contains("~ update 100 Anna Smit"), "{explained}");
}

/// Anna's second contract: the same person at store South, from `start` to `end`.
fn second_contract(start: &str, end: &str) -> String {
    format!(
        "100,ANNA@example.com,Anna,Smit,Baker,+31600000001,S,1,{start},{end},anna@corp.example\n"
    )
}

fn merging_repo(sim: &Sim, rows: &str) -> ConfigRepo {
    lifecycle_repo(sim, "  duplicate_xids: merge\n", rows)
}

#[test]
fn contracts_that_start_and_end_move_the_person_between_stores() {
    let sim = Sim::start(&empty_seed());
    let repo = merging_repo(&sim, &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");

    // A second contract from 15 November: nothing before that day, then the store is added.
    day.hr(&format!(
        "{ANNA}{BERT}{}",
        second_contract("15-11-2026", "")
    ));
    assert!(day.plan("2026-11-10").contains("No changes"));
    let plan = day.plan("2026-11-15");
    assert!(
        plan.contains("~ update 100 Anna Smit") && plan.contains("HR 2 contracts: lines 2 and 4"),
        "{plan}"
    );
    assert!(plan.contains("+ business unit \"Store South\""), "{plan}");
    let repo_dir = path_str(repo.path());
    let json = run(
        &[
            "plan",
            "--repo",
            &repo_dir,
            "--now",
            "2026-11-15",
            "--format",
            "json",
        ],
        repo.path(),
    );
    let json: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(json["users"][0]["contracts"], json!([2, 4]));
    let markdown = run(
        &[
            "plan",
            "--repo",
            &repo_dir,
            "--now",
            "2026-11-15",
            "--format",
            "markdown",
        ],
        repo.path(),
    );
    let markdown = stdout(&markdown);
    assert!(
        markdown.contains("Anna Smit (2 contracts") && markdown.contains("lines 2 and 4)"),
        "{markdown}"
    );
    let explained = run(
        &["explain", "100", "--repo", &repo_dir, "--now", "2026-11-15"],
        repo.path(),
    );
    let explained = stdout(&explained);
    assert!(
        explained.contains("Merged (policy.duplicate_xids: merge): 2 contracts: lines 2 and 4")
            && explained.contains("line 2: primary (the earliest start date")
            && explained.contains("line 4: active"),
        "{explained}"
    );
    day.apply("2026-11-15");
    let anna = sim.user_by_xid("100").unwrap();
    assert_eq!(
        sim.group_names(&anna),
        ["Bakery", "Store North", "Store South"]
    );

    // The first contract ends on 30 November: she loses its store and stays.
    day.hr(&format!(
        "{}{BERT}{}",
        ANNA.replace(",01-01-2020,,", ",01-01-2020,30-11-2026,"),
        second_contract("15-11-2026", "")
    ));
    assert!(day.plan("2026-11-30").contains("No changes"));
    let plan = day.plan("2026-12-01");
    assert!(plan.contains("- group \"Store North\""), "{plan}");
    assert!(!plan.contains("- suspend"), "{plan}");
    day.apply("2026-12-01");
    let anna = sim.user_by_xid("100").unwrap();
    assert_eq!(anna["status"], "active");
    assert_eq!(sim.group_names(&anna), ["Bakery", "Store South"]);

    // Both ended: the leaver path, suspended and deleted after the grace period.
    day.hr(&format!(
        "{}{BERT}{}",
        ANNA.replace(",01-01-2020,,", ",01-01-2020,30-11-2026,"),
        second_contract("15-11-2026", "15-12-2026")
    ));
    let plan = day.plan("2026-12-16");
    assert!(plan.contains("- suspend 100 Anna Smit"), "{plan}");
    assert!(plan.contains("end date 2026-12-15 has passed"), "{plan}");
    day.apply("2026-12-16");
    assert_eq!(sim.user_by_xid("100").unwrap()["status"], "suspended");
    let plan = day.plan("2027-01-15");
    assert!(plan.contains("- delete 100 Anna Smit"), "{plan}");
    day.apply("2027-01-15");
    assert!(sim.user_by_xid("100").is_none(), "deleted");
    assert_eq!(sim.user_by_xid("101").unwrap()["status"], "active");
}

#[test]
fn a_returner_with_a_new_contract_within_the_grace_period_is_restored() {
    let sim = Sim::start(&empty_seed());
    let ended = ANNA.replace(",01-01-2020,,", ",01-01-2020,30-11-2026,");
    let repo = merging_repo(&sim, &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    let eid = sim.user_by_xid("100").unwrap()["EID"].clone();
    day.hr(&format!("{ended}{BERT}"));
    day.apply("2026-12-01");
    assert_eq!(sim.user_by_xid("100").unwrap()["status"], "suspended");

    // A new contract at store South from 10 December, the old row still in the export.
    day.hr(&format!(
        "{ended}{BERT}{}",
        second_contract("10-12-2026", "")
    ));
    let plan = day.plan("2026-12-10");
    assert!(plan.contains("+ restore 100 Anna Smit"), "{plan}");
    assert!(!plan.contains("invite 100"), "{plan}");
    day.apply("2026-12-10");
    let anna = sim.user_by_xid("100").unwrap();
    assert_eq!(anna["EID"], eid, "the same account");
    assert_eq!(anna["status"], "active");
    assert_eq!(sim.group_names(&anna), ["Bakery", "Store South"]);
}

#[test]
fn contracts_with_different_addresses_are_not_merged_and_the_account_is_kept() {
    let sim = Sim::start(&empty_seed());
    let repo = merging_repo(&sim, &format!("{ANNA}{BERT}"));
    let day = Day { repo: &repo };
    day.apply("2026-11-02");
    let other = second_contract("01-11-2026", "").replace("ANNA@", "anna.smit@");
    day.hr(&format!("{ANNA}{BERT}{other}"));
    let plan = day.plan("2026-11-03");
    assert!(
        plan.contains(
            "not merged: the contracts differ in email address (a**a@example.com on line 2, a*******t@example.com on line 4)"
        ),
        "{plan}"
    );
    assert!(!plan.contains("- suspend"), "{plan}");
    day.apply("2026-11-03");
    let anna = sim.user_by_xid("100").unwrap();
    assert_eq!(anna["status"], "active");
    assert_eq!(sim.group_names(&anna), ["Bakery", "Store North"]);
}

#[test]
fn require_business_unit_invites_without_one_or_skips() {
    let sim = Sim::start(&empty_seed());
    let carla = "102,carla@example.com,Carla,Kok,Baker,,,1,01-01-2020,,\n";
    let repo = lifecycle_repo(
        &sim,
        "  require_business_unit: false\n",
        &format!("{ANNA}{carla}"),
    );
    let day = Day { repo: &repo };
    let plan = day.plan("2026-11-02");
    assert!(
        plan.contains("without a business unit (policy.require_business_unit is false)"),
        "{plan}"
    );
    day.apply("2026-11-02");
    let carla_account = sim.user_by_xid("102").unwrap();
    assert_eq!(sim.group_names(&carla_account), ["Bakery"]);

    // Required: her record is skipped and her account left alone.
    let sync = std::fs::read_to_string(repo.path().join("sync.yaml")).unwrap();
    repo.write(
        "sync.yaml",
        &sync.replace(
            "require_business_unit: false",
            "require_business_unit: true",
        ),
    );
    repo.commit("require a business unit");
    let plan = day.plan("2026-11-03");
    assert!(
        plan.contains("no business unit: no location code in column \"Location\""),
        "{plan}"
    );
    assert!(!plan.contains("- suspend"), "{plan}");
    day.apply("2026-11-03");
    assert_eq!(sim.user_by_xid("102").unwrap()["status"], "active");
}

#[test]
fn require_group_skips_a_person_the_rules_give_nothing() {
    let sim = Sim::start(&empty_seed());
    let nobody = "102,carla@example.com,Carla,Kok,Baker,,,,01-01-2020,,\n";
    let repo = lifecycle_repo(&sim, "  require_group: true\n", &format!("{ANNA}{nobody}"));
    let day = Day { repo: &repo };
    let plan = day.plan("2026-11-02");
    assert!(
        plan.contains(
            "no business unit, department or group from the mappings, rules or overrides"
        ),
        "{plan}"
    );
    assert!(plan.contains("+ invite 100 Anna Smit"), "{plan}");
    day.apply("2026-11-02");
    assert!(sim.user_by_xid("102").is_none(), "not invited into nothing");
    assert!(sim.user_by_xid("100").is_some());
}
