//! The Speakap client over real HTTP against the simulator: paging, batching limits, typed errors.

use speakap_sync::sim::{self, Seed, SeedGroup, SeedUser, SimConfig};
use speakap_sync::speakap::{self, ApiError, Client, wire};

const NETWORK: &str = "00000000000000aa";
const TOKEN: &str = "app_secret";

async fn start(users: usize) -> sim::RunningSim {
    start_serving_pages_of(users, sim::DEFAULT_MAX_PAGE_SIZE).await
}

async fn start_serving_pages_of(users: usize, max_page_size: usize) -> sim::RunningSim {
    start_with(users, max_page_size, sim::Faults::default()).await
}

async fn start_with(users: usize, max_page_size: usize, faults: sim::Faults) -> sim::RunningSim {
    let seed = Seed {
        schema: None,
        groups: vec![SeedGroup {
            eid: None,
            name: "Store".into(),
            group_type: "business_unit".into(),
        }],
        users: (0..users)
            .map(|i| SeedUser {
                xid: Some(format!("{i:05}")),
                email: format!("user{i}@example.com"),
                family_name: format!("User {i}"),
                groups: vec!["Store".into()],
                ..SeedUser::default()
            })
            .collect(),
    };
    let config = SimConfig {
        network: NETWORK.into(),
        token: TOKEN.into(),
        state_file: None,
        seed: Some(seed),
        faults,
        fault_seed: 0,
        max_page_size,
    };
    sim::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap()
}

fn sorted_xids(users: &[wire::User]) -> Vec<String> {
    let mut xids: Vec<String> = users.iter().filter_map(|u| u.xid.clone()).collect();
    xids.sort();
    xids
}

#[tokio::test]
async fn listing_follows_pages_shorter_or_longer_than_asked_for() {
    let expected: Vec<String> = (0..250).map(|i| format!("{i:05}")).collect();
    // (what the API serves at most, what the client asks for)
    for (served, asked) in [(7, 100), (1000, 1000), (100, 30)] {
        let running = start_serving_pages_of(250, served).await;
        let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000)
            .unwrap()
            .with_page_size(asked);
        let users = client.list_users().await.unwrap();
        assert_eq!(
            sorted_xids(&users),
            expected,
            "pages of at most {served}, {asked} asked for: every user once"
        );
        running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_listing_without_a_total_is_read_to_its_empty_page() {
    let faults = sim::Faults {
        listing_without_total: true,
        ..Default::default()
    };
    let running = start_with(250, 100, faults).await;
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    let users = client.list_users_as(|user| user).await.unwrap();
    let expected: Vec<String> = (0..250).map(|i| format!("{i:05}")).collect();
    assert_eq!(sorted_xids(&users.items), expected, "every user once");
    assert_eq!(
        users.pages, 4,
        "pages of 100, 100 and 50, then the empty one"
    );
    let groups = client.list_groups().await.unwrap();
    assert_eq!((groups.items.len(), groups.pages), (1, 2));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_listing_that_loses_records_is_an_error_naming_the_counts() {
    let faults = sim::Faults {
        listing_loss_every: 7,
        ..Default::default()
    };
    let running = start_with(30, 100, faults).await;
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000)
        .unwrap()
        .with_page_size(10);
    let error = client.list_users().await.unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::IncompleteListing {
                noun: "accounts",
                reads: 3,
                ..
            }
        ),
        "{error:?}"
    );
    // The first page holds 9 (the 7th left out), so pages start at 9, 18 and 27; the one at 18
    // loses the 21st and the 28th.
    assert!(
        error
            .to_string()
            .contains("(30 accounts reported, 28 received: the page at offset 18 held 8 where 9 were expected)"),
        "{error}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_listing_after_a_change_shows_the_change() {
    let running = start(3).await;
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    let before = client.list_users().await.unwrap();
    let update = wire::UserUpdate {
        job_title: Some("Baker".into()),
        ..Default::default()
    };
    client.update_user(&before[1].eid, &update).await.unwrap();
    let group = client.list_groups().await.unwrap().items[0].eid.clone();
    client
        .remove_from_groups(&before[2].eid, std::slice::from_ref(&group))
        .await
        .unwrap();
    let after = client.list_users().await.unwrap();
    assert_eq!(after[1].job_title.as_deref(), Some("Baker"));
    let in_group = |u: &wire::User| {
        u.embedded
            .memberships
            .iter()
            .any(|m| m.group.as_deref() == Some(group.as_str()))
    };
    assert!(in_group(&before[2]) && !in_group(&after[2]));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn listing_walks_every_page() {
    let running = start(250).await;
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    let observed = speakap::fetch(&client).await.unwrap();
    assert_eq!(observed.users.len(), 250);
    let mut xids: Vec<String> = observed
        .users
        .iter()
        .filter_map(|u| u.xid.clone())
        .collect();
    xids.sort();
    xids.dedup();
    assert_eq!(xids.len(), 250, "no user twice, none missing");
    assert!(
        observed
            .users
            .iter()
            .all(|u| u.groups.len() == 1 && u.role() == "member")
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn api_errors_are_typed_with_their_meaning() {
    let running = start(1).await;
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    let users = client.list_users().await.unwrap();
    let user = &users[0].eid;
    let group = client.list_groups().await.unwrap().items[0].eid.clone();

    let error = client
        .add_to_groups(user, std::slice::from_ref(&group))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(-9));
    assert!(
        error
            .to_string()
            .contains("already a member (code -9, HTTP 409)"),
        "{error}"
    );

    let error = client
        .update_user("ffffffffffffffff", &wire::UserUpdate::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(-4));
    assert!(!error.is_systemic());

    let wrong = Client::new(&running.url, NETWORK, "app_wrong", "1.8.2", 1000).unwrap();
    let error = wrong.list_users().await.unwrap_err();
    assert!(matches!(
        error,
        ApiError::Api {
            code: -2,
            status: 401,
            ..
        }
    ));
    assert!(error.is_systemic());
    assert!(
        !format!("{error} {error:?} {wrong:?}").contains("app_wrong"),
        "the token never shows"
    );

    let other_network =
        Client::new(&running.url, "00000000000000bb", TOKEN, "1.8.2", 1000).unwrap();
    assert_eq!(
        other_network.list_groups().await.unwrap_err().code(),
        Some(-4)
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn invites_report_per_address_and_repeat_invites_return_the_same_account() {
    let running = start(0).await;
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    let invitee = |email: &str| wire::Invitee {
        name: "Ann Example".into(),
        email: email.into(),
        ..Default::default()
    };
    let results = client
        .invite(vec![invitee("ann@example.com"), invitee("not-an-address")])
        .await
        .unwrap();
    assert_eq!(results[0].status, "sent");
    assert_eq!(results[1].status, "invalid");
    let again = client
        .invite(vec![invitee("ANN@example.com")])
        .await
        .unwrap();
    assert_eq!(again[0].status, "invitee");
    assert_eq!(again[0].eid, results[0].eid, "no duplicate account");

    let too_many: Vec<wire::Invitee> = (0..=speakap::MAX_INVITES_PER_CALL)
        .map(|i| invitee(&format!("u{i}@example.com")))
        .collect();
    let error = client.invite(too_many).await.unwrap_err();
    assert_eq!(error.code(), Some(-1));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_simulator_keeps_its_network_in_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = SimConfig {
        network: NETWORK.into(),
        token: TOKEN.into(),
        state_file: Some(state.clone()),
        seed: None,
        faults: Default::default(),
        fault_seed: 0,
        max_page_size: sim::DEFAULT_MAX_PAGE_SIZE,
    };
    let running = sim::start(([127, 0, 0, 1], 0).into(), config.clone())
        .await
        .unwrap();
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    client
        .invite(vec![wire::Invitee {
            name: "Kept".into(),
            email: "kept@example.com".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    running.stop().await.unwrap();

    let restarted = sim::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let client = Client::new(&restarted.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    let users = client.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].primary_email.as_deref(), Some("kept@example.com"));
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn an_invite_answered_429_is_sent_again_without_lookups() {
    let config = SimConfig {
        network: NETWORK.into(),
        token: TOKEN.into(),
        state_file: None,
        seed: None,
        // One request a second: the listing takes the slot, the invite right after it gets 429.
        faults: sim::Faults {
            rate_limit: Some(1),
            ..Default::default()
        },
        fault_seed: 0,
        max_page_size: sim::DEFAULT_MAX_PAGE_SIZE,
    };
    let running = sim::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let client = Client::new(&running.url, NETWORK, TOKEN, "1.8.2", 1000).unwrap();
    client.list_groups().await.unwrap();
    let invitees = ["ann@example.com", "bob@example.com"].map(|email| wire::Invitee {
        name: "Someone Example".into(),
        email: email.into(),
        ..Default::default()
    });
    let results = client.invite(invitees.to_vec()).await.unwrap();
    assert!(results.iter().all(|r| r.status == "sent"), "{results:?}");
    let stats: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/_sim/stats", running.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The listing, the invite turned away, the invite again: a 429 means it was not handled, so
    // there is nothing to look up.
    assert_eq!(stats["rate_limited"], 1, "{stats}");
    assert_eq!(stats["requests"], 3, "{stats}");
    assert_eq!(client.retries(), 1);
    running.stop().await.unwrap();
}
