//! Campaigns through the HTTP API of the real `hongbao serve`.

use std::time::Duration;

use crate::support::{OTHER_TOKEN, Options, TOKEN, World};
use serde_json::{Value, json};

fn csv_rows(first: u32, n: u32) -> String {
    let mut text = String::from("openid,amount\n");
    for i in first..first + n {
        text.push_str(&format!("oApi{i:024},1.{:02}\n", i % 100));
    }
    text
}

async fn upload(world: &World, token: &str, query: &str, body: String) -> (u16, Value) {
    let response = world
        .http
        .post(format!("{}/v1/campaigns?{query}", world.base))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_done(world: &World, id: &str) -> Value {
    for _ in 0..300 {
        let (status, campaign) = world.get(Some(TOKEN), &format!("/v1/campaigns/{id}")).await;
        assert_eq!(status, 200, "{campaign}");
        if campaign["status"] == "done" {
            return campaign;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_upload_is_validated_stored_and_paid() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;
    let (status, created) =
        upload(&world, TOKEN, "name=spring&merchant=main", csv_rows(0, 50)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rows"], 50);
    let id = created["id"].as_str().unwrap().to_owned();
    let done = wait_done(&world, &id).await;
    assert_eq!(done["paid_count"], 50);
    assert_eq!(done["open_count"], 0);
    assert_eq!(done["counts"]["sent"], 50);
    assert_eq!(done["paid_amount"], done["total_amount"]);

    // The records are ordinary records, with their campaign.
    let (_, list) = world
        .get(
            Some(TOKEN),
            &format!("/v1/redpacks?campaign_id={id}&limit=100"),
        )
        .await;
    assert_eq!(list["meta"]["total_count"], 50);
    let records = world.all_records(TOKEN).await;
    world.assert_exactly_once(&records);

    let report = world
        .http
        .get(format!("{}/v1/campaigns/{id}/report.csv", world.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    let text = report.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 51);
    assert!(lines[0].starts_with("line,openid,amount,mch_billno,status"));
    assert!(
        lines[1].starts_with("2,oApi000000000000000000000000,1.00,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(",sent,"));

    // The operator's CLI sees a campaign uploaded through the API.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_hongbao"))
        .args(["campaign", "status", "spring"])
        .args(["--config", world.config.to_str().unwrap()])
        .env_remove("HONGBAO_CONFIG")
        .env("RUST_LOG", "warn")
        .current_dir(world.dir.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(printed.contains("50"), "{printed}");

    // The same name and file again: the same campaign; another file: 409.
    let (status, again) = upload(&world, TOKEN, "name=spring&merchant=main", csv_rows(0, 50)).await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
    let (status, error) = upload(&world, TOKEN, "name=spring&merchant=main", csv_rows(0, 49)).await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["code"], "campaign_exists");
    assert_eq!(world.sandbox.ledger().len(), 50);

    // An Idempotency-Key: the same upload again is the same campaign; the
    // key with another upload is refused.
    let keyed = |body: String, name: &str| {
        world
            .http
            .post(format!(
                "{}/v1/campaigns?name={name}&merchant=main",
                world.base
            ))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .header("Idempotency-Key", "upload-7")
            .body(body)
            .send()
    };
    let first = keyed(csv_rows(100, 5), "keyed").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = keyed(csv_rows(100, 5), "keyed").await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let other = keyed(csv_rows(200, 5), "other").await.unwrap();
    assert_eq!(other.status(), 409);
    assert_eq!(
        other.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_key_reused"
    );
    wait_done(&world, first["id"].as_str().unwrap()).await;

    // Another tenant does not see it.
    let (status, _) = world
        .get(Some(OTHER_TOKEN), &format!("/v1/campaigns/{id}"))
        .await;
    assert_eq!(status, 404);
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_listed_by_line_and_nothing_is_stored() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;
    let body = "openid,amount\noApi000000000000000000000001,1.00\noBad,1.00\noApi000000000000000000000002,0.10\noApi000000000000000000000001,1.00\n";
    let (status, answer) = upload(&world, TOKEN, "name=bad&merchant=main", body.into()).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_rows");
    assert_eq!(answer["bad_rows"], 3);
    let lines: Vec<u64> = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5]);
    assert!(
        answer["rows"][0]["zh_message"]
            .as_str()
            .unwrap()
            .contains("28")
    );
    let (_, campaigns) = world.get(Some(TOKEN), "/v1/campaigns").await;
    assert_eq!(campaigns, json!([]));
    let (_, list) = world.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 0);

    let (status, error) = upload(&world, TOKEN, "merchant=main", csv_rows(0, 2)).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("name"))
    );
    let (status, error) = upload(
        &world,
        TOKEN,
        "name=x&merchant=main",
        "name,amount\n".into(),
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("header")),
        "{error}"
    );
    let (status, dry) = upload(
        &world,
        TOKEN,
        "name=dry&merchant=main&dry_run=true",
        csv_rows(0, 10),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(dry["rows"], 10);
    assert!(world.sandbox.ledger().is_empty());
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rows_work_the_same_and_amounts_are_never_floats() {
    let mut world = World::new(|_| {}, Options::default()).await;
    world.start_serve().await;
    let rows: Vec<Value> = (0..20)
        .map(|i| json!({"openid": format!("oJson{i:023}"), "amount": "1.88", "wishing": "恭喜"}))
        .collect();
    let (status, created) = world
        .post(
            Some(TOKEN),
            "/v1/campaigns",
            &json!({"name": "json", "merchant": "main", "rows": rows}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["total_amount"], 20 * 188);
    wait_done(&world, created["id"].as_str().unwrap()).await;
    let (status, error) = world
        .post(
            Some(TOKEN),
            "/v1/campaigns",
            &json!({"name": "float", "merchant": "main", "rows": [{"openid": "oJson00000000000000000000001", "amount": 1.88}]}),
            None,
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("string in yuan")
    );

    // The per-openid daily cap counts the rows of "json" above: a second
    // payout to each of the first two openids is over a cap of 1.
    let capped: Vec<Value> = (0..3)
        .map(|i| json!({"openid": format!("oJson{:023}", i * 10), "amount": "1.00"}))
        .collect();
    let (status, created) = world
        .post(
            Some(TOKEN),
            "/v1/campaigns",
            &json!({"name": "capped", "merchant": "main", "per_openid_daily": 1, "rows": capped}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let done = wait_done(&world, created["id"].as_str().unwrap()).await;
    assert_eq!(
        (&done["failed_count"], &done["paid_count"]),
        (&json!(2), &json!(1)),
        "{done}"
    );
    assert_eq!(done["err_codes"]["CAMPAIGN_DAILY_CAP"], 2, "{done}");
    let (status, error) = upload(
        &world,
        TOKEN,
        "name=c&merchant=main&per_openid_daily=0",
        "openid,amount\n".into(),
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("per_openid_daily")),
        "{error}"
    );
    world.stop_serve();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_campaign_waits_and_resumes() {
    let mut world = World::new(
        |c| c.rules.rate_per_minute = 0,
        Options {
            rate_per_minute: 120,
            ..Options::default()
        },
    )
    .await;
    world.start_serve().await;
    let (status, created) = upload(&world, TOKEN, "name=slow&merchant=main", csv_rows(0, 20)).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, paused) = world
        .post(
            Some(TOKEN),
            &format!("/v1/campaigns/{id}/pause"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(paused["status"], "paused");
    // Records already claimed go back too: at most a call that was on the
    // wire when the pause came finishes.
    let at_pause = world.sandbox.ledger().len();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let before = world.sandbox.ledger().len();
    assert!(
        before <= at_pause + 1,
        "{} rows paid after the pause",
        before - at_pause
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        world.sandbox.ledger().len(),
        before,
        "a paused campaign pays nothing"
    );
    assert!(before < 20);
    let (status, _) = world
        .post(
            Some(TOKEN),
            &format!("/v1/campaigns/{id}/resume"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let done = wait_done(&world, &id).await;
    assert_eq!(done["paid_count"], 20);
    world.stop_serve();
}
