//! A value the database should never hold (a negative amount or count,
//! an unknown status or rail) is an error naming its column, never read
//! as 0 or as a default: on SQLite, and on PostgreSQL with
//! `TEST_POSTGRES_URL`.

mod common;

use common::openid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_value_is_an_error_naming_its_column() {
    let mut env = common::start(|_| {}).await;
    env.stop_dispatcher().await;
    let record = env.send(&openid(1), 150).await;
    let ledger = env.payouts.ledger();
    let pool = ledger.db().pool();
    let read = || async { ledger.get(&record.id).await };
    assert_eq!(read().await.unwrap().unwrap().total_amount.get(), 150);

    for (sql, column) in [
        (
            "UPDATE payouts SET total_amount = -150 WHERE id = $1",
            "total_amount",
        ),
        ("UPDATE payouts SET attempts = -1 WHERE id = $1", "attempts"),
        ("UPDATE payouts SET status = 'lost' WHERE id = $1", "status"),
        ("UPDATE payouts SET rail = 'pigeon' WHERE id = $1", "rail"),
    ] {
        sqlx::query(
            "UPDATE payouts SET total_amount = 150, attempts = 0, status = 'pending', rail = 'redpack' WHERE id = $1",
        )
        .bind(&record.id)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(sql)
            .bind(&record.id)
            .execute(pool)
            .await
            .unwrap();
        let error = read().await.expect_err(sql).to_string();
        assert!(error.contains(column), "{sql}: {error}");
    }
}
