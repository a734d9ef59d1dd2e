//! The lottery flow through the real `hongbao serve`: a prize is claimed
//! once however many taps reach it, only by a follower, only within its
//! activity's rules; a recipient-level refusal confirmed by gethbinfo makes
//! it claimable again under a new mch_billno; the official account's token
//! is refreshed once however many claims find it stale.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{OTHER_TOKEN, Options, TOKEN, World, openid};
use hongbao_sandbox::Followers;
use serde_json::{Value, json};

async fn started(configure: impl FnOnce(&mut hongbao_sandbox::SandboxConfig)) -> World {
    let mut world = World::new(configure, Options::default()).await;
    world.start_serve().await;
    world
}

async fn activity(world: &World, token: &str, body: Value) -> Value {
    let (status, activity) = world.post(Some(token), "/v1/activities", &body, None).await;
    assert_eq!(status, 201, "{activity}");
    activity
}

async fn grant(world: &World, body: Value) -> Value {
    let (status, prize) = world.post(Some(TOKEN), "/v1/prizes", &body, None).await;
    assert_eq!(status, 201, "{prize}");
    assert_eq!(prize["status"], "pending");
    prize
}

async fn claim(world: &World, prize: &Value, openid: &str, wait: u32) -> (u16, Value) {
    let id = prize["id"].as_str().unwrap();
    let wait = if wait == 0 {
        String::new()
    } else {
        format!("?wait={wait}")
    };
    world
        .post(
            Some(TOKEN),
            &format!("/v1/prizes/{id}/claim{wait}"),
            &json!({ "openid": openid }),
            None,
        )
        .await
}

/// Asserts a refusal: its HTTP status, code and both messages.
fn refused(answer: &(u16, Value), status: u16, code: &str, zh: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(!error["message"].as_str().unwrap().is_empty(), "{body}");
    assert!(error["zh_message"].as_str().unwrap().contains(zh), "{body}");
}

async fn prize_now(world: &World, prize: &Value) -> Value {
    let (status, now) = world
        .get(
            Some(TOKEN),
            &format!("/v1/prizes/{}", prize["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{now}");
    now
}

/// Waits (bounded) until the prize has `status`.
async fn wait_prize(world: &World, prize: &Value, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = prize_now(world, prize).await;
        if now["status"] == status {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "prize never became {status}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn paid_to(world: &World, openid: &str) -> Vec<hongbao_sandbox::LedgerEntry> {
    world
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.paid && e.openid == openid)
        .collect()
}

fn token_fetches(world: &World) -> u64 {
    world.sandbox.with(|s| {
        s.counters()
            .requests
            .get("token")
            .copied()
            .unwrap_or_default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_claims_of_one_prize_pay_it_once() {
    let world = started(|_| {}).await;
    activity(&world, TOKEN, json!({"name": "spring"})).await;
    let prize = grant(
        &world,
        json!({"activity": "spring", "user": "u-1", "amount": 188}),
    )
    .await;
    let winner = openid(1);

    let taps = (0..100).map(|_| claim(&world, &prize, &winner, 0));
    let answers = futures_util::future::join_all(taps).await;
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    assert_eq!(accepted[0]["status"], "issuing");
    assert!(
        accepted[0]["zh_message"]
            .as_str()
            .unwrap()
            .contains("红包正在发放")
    );
    for (status, body) in answers.iter().filter(|(s, _)| *s != 202) {
        assert_eq!(*status, 409, "{body}");
        let code = body["error"]["code"].as_str().unwrap();
        assert!(
            code == "prize_already_claimed" || code == "prize_claim_in_progress",
            "{body}"
        );
        assert!(!body["error"]["zh_message"].as_str().unwrap().is_empty());
    }
    // One access token for the hundred follow checks.
    assert_eq!(token_fetches(&world), 1);

    let issued = wait_prize(&world, &prize, "issued").await;
    let paid = paid_to(&world, &winner);
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0].amount, 188);
    assert_eq!(
        issued["mch_billno"].as_str(),
        Some(paid[0].mch_billno.as_str())
    );
    assert_eq!(issued["claims"], 1);
    assert_eq!(issued["redpack"]["prize_id"], prize["id"]);
    assert!(
        issued["zh_message"]
            .as_str()
            .unwrap()
            .contains("红包已发放")
    );

    // Later taps are told it was claimed; nothing more is paid.
    refused(
        &claim(&world, &prize, &winner, 0).await,
        409,
        "prize_already_claimed",
        "该奖品已领取",
    );
    let records = world.wait_settled(TOKEN, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 1);
    world.assert_exactly_once(&records);
    let (_, spring) = world.get(Some(TOKEN), "/v1/activities/spring").await;
    assert_eq!(spring["committed"], 188);
    assert_eq!(spring["prizes"]["issued"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_does_not_follow_is_refused_until_they_follow() {
    let world = started(|c| c.followers = Followers::None).await;
    activity(&world, TOKEN, json!({"name": "follow-first"})).await;
    let prize = grant(
        &world,
        json!({"activity": "follow-first", "user": "u-7", "amount": 666}),
    )
    .await;
    let user = openid(7);

    let answer = claim(&world, &prize, &user, 5).await;
    refused(&answer, 403, "not_following", "请先关注公众号");
    assert_eq!(
        answer.1["error"]["message"],
        "please follow the official account first"
    );
    assert_eq!(prize_now(&world, &prize).await["status"], "pending");
    assert!(world.sandbox.ledger().is_empty());
    assert!(world.all_records(TOKEN).await.is_empty());

    world.sandbox.with(|s| {
        s.set_followers(Followers::List([user.clone()].into_iter().collect()));
    });
    let (status, paid) = claim(&world, &prize, &user, 30).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "issued");
    assert_eq!(paid_to(&world, &user).len(), 1);
    assert_eq!(paid_to(&world, &user)[0].amount, 666);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_answers_its_own_code_and_both_messages() {
    let world = started(|_| {}).await;
    activity(&world, TOKEN, json!({"name": "main-draw"})).await;
    let cash =
        |user: &str, amount: u64| json!({"activity": "main-draw", "user": user, "amount": amount});

    // No such prize; another tenant's prize is no prize either.
    let ghost = json!({"id": "pz_01JD0000000000000000000000"});
    refused(
        &claim(&world, &ghost, &openid(1), 0).await,
        404,
        "prize_not_found",
        "奖品不存在",
    );
    activity(&world, OTHER_TOKEN, json!({"name": "beta-draw"})).await;
    let (status, theirs) = world
        .post(
            Some(OTHER_TOKEN),
            "/v1/prizes",
            &json!({"activity": "beta-draw", "user": "b-1", "amount": 100}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{theirs}");
    refused(
        &claim(&world, &theirs, &openid(1), 0).await,
        404,
        "prize_not_found",
        "奖品不存在",
    );

    // A malformed openid names the field.
    let prize = grant(&world, cash("u-1", 100)).await;
    let (status, body) = claim(&world, &prize, "not-an-openid", 0).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "openid");

    // Not a cash prize.
    let coupon = grant(
        &world,
        json!({"activity": "main-draw", "user": "u-2", "type": "coupon"}),
    )
    .await;
    refused(
        &claim(&world, &coupon, &openid(2), 0).await,
        422,
        "prize_not_cash",
        "不能以现金领取",
    );

    // Bound to another openid.
    let bound = grant(
        &world,
        json!({"activity": "main-draw", "user": "u-3", "amount": 100, "openid": openid(3)}),
    )
    .await;
    let answer = claim(&world, &bound, &openid(4), 0).await;
    refused(&answer, 403, "prize_not_yours", "属于其他用户");
    assert_eq!(answer.1["error"]["field"], "openid");

    // An openid the official account does not know.
    let stranger = openid(99);
    world.sandbox.with(|s| {
        s.set_foreign([stranger.clone()].into_iter().collect());
    });
    refused(
        &claim(&world, &prize, &stranger, 0).await,
        422,
        "openid_not_of_account",
        "不是本公众号的用户",
    );

    // Granting outside the range is refused at once; a range changed after
    // the grant is a configuration error at the claim, said so.
    let (status, body) = world
        .post(Some(TOKEN), "/v1/prizes", &cash("u-5", 30_000), None)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "amount");
    let big = grant(&world, cash("u-5", 5_000)).await;
    let patched = world
        .http
        .patch(format!("{}/v1/activities/main-draw", world.base))
        .bearer_auth(TOKEN)
        .json(&json!({"max_amount": 1_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let answer = claim(&world, &big, &openid(5), 0).await;
    refused(&answer, 422, "prize_amount_out_of_range", "配置错误");
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("configuration error")
            && message.contains("50.00")
            && message.contains("1.00–10.00"),
        "{message}"
    );

    // The budget: one prize fits, the second does not.
    activity(
        &world,
        TOKEN,
        json!({"name": "small-budget", "budget": 300}),
    )
    .await;
    let first = grant(
        &world,
        json!({"activity": "small-budget", "user": "u-6", "amount": 200}),
    )
    .await;
    let second = grant(
        &world,
        json!({"activity": "small-budget", "user": "u-7", "amount": 200}),
    )
    .await;
    assert_eq!(claim(&world, &first, &openid(6), 0).await.0, 202);
    refused(
        &claim(&world, &second, &openid(7), 0).await,
        409,
        "activity_budget_exhausted",
        "预算已用完",
    );
    let (_, refusal) = claim(&world, &second, &openid(7), 0).await;
    let words = format!("{refusal}");
    assert!(
        !words.contains("small-budget"),
        "an internal name is shown: {words}"
    );
    let (_, budget) = world.get(Some(TOKEN), "/v1/activities/small-budget").await;
    assert_eq!(budget["budget_left"], 100);

    // The daily count per openid.
    activity(
        &world,
        TOKEN,
        json!({"name": "once-a-day", "per_user_daily": 1}),
    )
    .await;
    let today = grant(
        &world,
        json!({"activity": "once-a-day", "user": "u-8", "amount": 100}),
    )
    .await;
    let again = grant(
        &world,
        json!({"activity": "once-a-day", "user": "u-8", "amount": 100}),
    )
    .await;
    assert_eq!(claim(&world, &today, &openid(8), 0).await.0, 202);
    refused(
        &claim(&world, &again, &openid(8), 0).await,
        409,
        "daily_claim_limit",
        "明天再来",
    );

    // In progress while the merchant is paused; claimed once it is paid.
    let (status, _) = world
        .post(Some(TOKEN), "/v1/merchants/main/pause", &json!({}), None)
        .await;
    assert_eq!(status, 200);
    let held = grant(&world, cash("u-9", 100)).await;
    assert_eq!(claim(&world, &held, &openid(9), 0).await.0, 202);
    refused(
        &claim(&world, &held, &openid(9), 0).await,
        409,
        "prize_claim_in_progress",
        "正在领取中",
    );
    let (status, _) = world
        .post(Some(TOKEN), "/v1/merchants/main/resume", &json!({}), None)
        .await;
    assert_eq!(status, 200);
    wait_prize(&world, &held, "issued").await;
    refused(
        &claim(&world, &held, &openid(9), 0).await,
        409,
        "prize_already_claimed",
        "该奖品已领取",
    );

    // Nothing refused was paid: three payouts, to 6, 8 and 9.
    let records = world.wait_settled(TOKEN, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 3, "{records:?}");
    world.assert_exactly_once(&records);
    let paid: BTreeSet<String> = world
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.paid)
        .map(|e| e.openid)
        .collect();
    assert_eq!(
        paid,
        [openid(6), openid(8), openid(9)].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_limit_confirmed_by_gethbinfo_makes_the_prize_claimable_under_a_new_billno() {
    let world = started(|c| c.rules.sendnum_limit = 1).await;
    activity(&world, TOKEN, json!({"name": "twice", "per_user_daily": 5})).await;
    let user = openid(21);
    let one = grant(
        &world,
        json!({"activity": "twice", "user": "u-21", "amount": 100}),
    )
    .await;
    let two = grant(
        &world,
        json!({"activity": "twice", "user": "u-21", "amount": 150}),
    )
    .await;
    assert_eq!(claim(&world, &one, &user, 30).await.1["status"], "issued");

    // WeChat refuses the second packet today: the prize is claimable again,
    // the user is told why in words, the operator sees the err_code.
    let (status, back) = claim(&world, &two, &user, 30).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["status"], "pending", "{back}");
    assert_eq!(back["last_err_code"], "SENDNUM_LIMIT");
    assert!(back["redpack_id"].is_null());
    assert!(back["message"].as_str().unwrap().contains("tomorrow"));
    assert!(back["zh_message"].as_str().unwrap().contains("明天"));
    assert!(!back["zh_message"].as_str().unwrap().contains("SENDNUM"));

    // Its payout failed only after gethbinfo confirmed nothing was paid.
    let records = world.all_records(TOKEN).await;
    let refused_record = records
        .iter()
        .find(|r| r["prize_id"] == two["id"])
        .expect("the refused claim's record");
    assert_eq!(refused_record["status"], "failed");
    assert_eq!(refused_record["err_code"], "SENDNUM_LIMIT");
    let (_, attempts) = world
        .get(
            Some(TOKEN),
            &format!(
                "/v1/redpacks/{}/attempts",
                refused_record["id"].as_str().unwrap()
            ),
        )
        .await;
    let apis: Vec<&str> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["api"].as_str().unwrap())
        .collect();
    assert_eq!(apis.first(), Some(&"sendredpack"), "{attempts}");
    assert_eq!(apis.last(), Some(&"gethbinfo"), "{attempts}");
    assert_eq!(apis.iter().filter(|a| **a == "sendredpack").count(), 1);
    let (_, twice) = world.get(Some(TOKEN), "/v1/activities/twice").await;
    assert_eq!(
        twice["committed"], 100,
        "the refused claim gave its budget back"
    );

    // Tomorrow (the limit lifted): a new claim, a new mch_billno, paid once.
    world.sandbox.with(|s| s.rules.sendnum_limit = 10);
    let (status, paid) = claim(&world, &two, &user, 30).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "issued");
    assert_eq!(paid["claims"], 2);
    assert_ne!(paid["mch_billno"], refused_record["mch_billno"]);
    let ledger = world.sandbox.ledger();
    let old = ledger
        .iter()
        .find(|e| e.mch_billno == refused_record["mch_billno"].as_str().unwrap())
        .unwrap();
    assert!(!old.paid && old.status == "FAILED");
    let amounts: Vec<u64> = paid_to(&world, &user).iter().map(|e| e.amount).collect();
    assert_eq!(amounts.len(), 2, "{amounts:?}");
    assert!(amounts.contains(&100) && amounts.contains(&150));
}

/// Claims a batch of prizes at once (each for its own follower); then the
/// sandbox must have issued `fetches` tokens in all.
async fn claim_batch(world: &World, (i, batch): (usize, &[Value]), fetches: u64, why: &str) {
    let taps = batch.iter().enumerate().map(|(j, prize)| {
        let who = openid(u32::try_from(100 + i * 20 + j).unwrap());
        async move { claim(world, prize, &who, 0).await }
    });
    for (status, body) in futures_util::future::join_all(taps).await {
        assert_eq!(status, 202, "{why}: {body}");
    }
    assert_eq!(token_fetches(world), fetches, "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_access_token_is_refreshed_once_however_many_claims_find_it() {
    let world = started(|_| {}).await;
    activity(&world, TOKEN, json!({"name": "tokens"})).await;
    let mut prizes = Vec::new();
    for n in 0..100 {
        prizes.push(
            grant(
                &world,
                json!({"activity": "tokens", "user": format!("t-{n}"), "amount": 100}),
            )
            .await,
        );
    }
    let mut batches = prizes.chunks(20).enumerate();
    let mut next = || batches.next().unwrap();
    claim_batch(&world, next(), 1, "the first token").await;
    // Revoked (another system fetched one): 40001, one refresh.
    world.sandbox.with(|s| s.revoke_tokens());
    claim_batch(&world, next(), 2, "after an invalid credential").await;
    // Expired at WeChat's side: 42001, one refresh.
    world.sandbox.with(|s| {
        s.advance_clock(7_300);
    });
    claim_batch(&world, next(), 3, "after expiry at WeChat").await;
    // A token of 8 s is refreshed after 4 s, before WeChat refuses it, once.
    world.sandbox.with(|s| {
        s.rules.token_ttl_seconds = 8;
        s.revoke_tokens();
    });
    claim_batch(&world, next(), 4, "a short-lived token").await;
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    claim_batch(&world, next(), 5, "past half its life").await;

    let records = world.wait_settled(TOKEN, Duration::from_secs(60)).await;
    assert_eq!(records.len(), 100);
    world.assert_exactly_once(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_and_grants_are_checked_named_and_replayable() {
    let world = started(|_| {}).await;
    let lottery =
        json!({"name": "lottery", "scene_id": "PRODUCT_2", "min_amount": 30, "budget": 100_000});
    let created = activity(&world, TOKEN, lottery.clone()).await;
    assert_eq!(created["min_amount"], 30);
    assert_eq!(created["max_amount"], 20_000);
    assert_eq!(
        created["send_name"], "hongbao sandbox",
        "the merchant's default"
    );
    assert_eq!(created["require_follow"], true);
    // The same again is the same activity; other rules under the name are not.
    let (status, same) = world
        .post(Some(TOKEN), "/v1/activities", &lottery, None)
        .await;
    assert_eq!((status, &same["id"]), (200, &created["id"]));
    let (status, taken) = world
        .post(
            Some(TOKEN),
            "/v1/activities",
            &json!({"name": "lottery", "budget": 1}),
            None,
        )
        .await;
    assert_eq!(status, 409, "{taken}");
    assert_eq!(taken["error"]["code"], "activity_exists");
    // Rules checked with the field named: 0.30 yuan needs a scene.
    let (status, bad) = world
        .post(
            Some(TOKEN),
            "/v1/activities",
            &json!({"name": "cheap", "min_amount": 30}),
            None,
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["field"], "min_amount");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scene_id")
    );
    let (status, bad) = world
        .post(
            Some(TOKEN),
            "/v1/activities",
            &json!({"name": "mp", "type": "miniprogram", "require_follow": true}),
            None,
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["field"], "require_follow");

    // Grants: the Idempotency-Key replays, and refuses another body.
    let win = json!({"activity": "lottery", "user": "u-42", "amount": 30});
    let (first_status, first) = world
        .post(Some(TOKEN), "/v1/prizes", &win, Some("draw-42"))
        .await;
    let (again_status, again) = world
        .post(Some(TOKEN), "/v1/prizes", &win, Some("draw-42"))
        .await;
    assert_eq!((first_status, again_status), (201, 200), "{first} {again}");
    assert_eq!(first["id"], again["id"]);
    let (status, reused) = world
        .post(
            Some(TOKEN),
            "/v1/prizes",
            &json!({"activity": "lottery", "user": "u-42", "amount": 31}),
            Some("draw-42"),
        )
        .await;
    assert_eq!(status, 409, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    let (status, unknown) = world
        .post(
            Some(TOKEN),
            "/v1/prizes",
            &json!({"activity": "nope", "user": "u-1", "amount": 100}),
            None,
        )
        .await;
    assert_eq!(status, 422, "{unknown}");
    assert_eq!(unknown["error"]["field"], "activity");

    // A 0.30 yuan lottery prize is paid with its scene.
    let (status, paid) = claim(&world, &first, &openid(42), 30).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "issued");
    assert_eq!(paid["redpack"]["scene_id"], "PRODUCT_2");
    assert_eq!(paid_to(&world, &openid(42))[0].amount, 30);

    // A user's prizes, by their reference.
    grant(
        &world,
        json!({"activity": "lottery", "user": "u-42", "type": "points"}),
    )
    .await;
    grant(
        &world,
        json!({"activity": "lottery", "user": "u-43", "amount": 100}),
    )
    .await;
    let (status, mine) = world.get(Some(TOKEN), "/v1/prizes?user=u-42").await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["meta"]["total_count"], 2);
    let (_, issued) = world
        .get(Some(TOKEN), "/v1/prizes?activity=lottery&status=issued")
        .await;
    assert_eq!(issued["meta"]["total_count"], 1);
    let (_, theirs) = world.get(Some(OTHER_TOKEN), "/v1/prizes?user=u-42").await;
    assert_eq!(
        theirs["meta"]["total_count"], 0,
        "tenants see their own only"
    );

    // A mini program activity: the claim answers what wx.sendBizRedPacket needs.
    activity(
        &world,
        TOKEN,
        json!({"name": "mini", "type": "miniprogram"}),
    )
    .await;
    let mini = grant(
        &world,
        json!({"activity": "mini", "user": "u-50", "amount": 200}),
    )
    .await;
    let (status, ready) = claim(&world, &mini, &openid(50), 30).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "issued");
    assert_eq!(ready["message"], "Your red packet is ready: open it now.");
    let params = &ready["redpack"]["mini_program"];
    assert!(
        params["package"].as_str().is_some_and(|p| !p.is_empty()),
        "{ready}"
    );
    assert!(
        params["paySign"].as_str().is_some_and(|p| !p.is_empty()),
        "{ready}"
    );
    assert_eq!(
        world
            .sandbox
            .ledger()
            .iter()
            .find(|e| e.openid == openid(50))
            .unwrap()
            .api,
        "sendminiprogramhb"
    );
}
