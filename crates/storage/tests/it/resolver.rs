//! Opening stores by URL, and bad input at open time: malformed URLs, backends left out of the
//! build, missing or read-only places, files that are not ours. Nothing stored is damaged.

use agentry_storage::{Error, ItemStoreExt, Key, TableSpec, open};
use serde_json::json;

fn attrs(v: serde_json::Value) -> agentry_storage::Attributes {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn sqlite_url_opens_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}/agentry.db?synchronous=normal",
        dir.path().display()
    );
    let store = open(&url).await.unwrap();
    store.create_table(&TableSpec::new("Users")).await.unwrap();
    store
        .put(
            "Users",
            Key::new("u1", "profile"),
            attrs(json!({"name": "Ada"})),
        )
        .await
        .unwrap();
    drop(store);
    let store = open(&url).await.unwrap();
    let item = store
        .get("Users", &Key::new("u1", "profile"))
        .await
        .unwrap()
        .expect("item survives reopening");
    assert_eq!(item.attributes["name"], json!("Ada"));
    // A relative path works too.
    let rel = open("sqlite::memory:").await.unwrap();
    rel.create_table(&TableSpec::new("Users")).await.unwrap();
}

#[tokio::test]
async fn malformed_urls_are_named() {
    for url in [
        "nonsense",
        "sqlite:/x.db",
        "sqlite://",
        "ftp://host/x",
        "sqlite://x.db?synchronous=sometimes",
        "sqlite://x.db?cache=big",
        "postgres://host:notaport/db",
    ] {
        match open(url).await {
            Err(Error::InvalidInput { field, message }) => {
                assert_eq!(field, "store url", "{url}");
                assert!(!message.is_empty());
            }
            #[cfg(not(feature = "postgres"))]
            Err(Error::Unsupported(_)) if url.starts_with("postgres") => {}
            other => panic!(
                "{url}: expected an invalid store url, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    match open("dynamodb://table?region=eu-west-1").await {
        Err(Error::Unsupported(m)) => assert!(m.contains("not supported in this build"), "{m}"),
        other => panic!("expected unsupported, got {:?}", other.map(|_| ())),
    }
}

#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn postgres_left_out_of_the_build_says_so() {
    match open("postgres://postgres@127.0.0.1/test").await {
        Err(Error::Unsupported(m)) => assert!(
            m.contains("not supported in this build") && m.contains("postgres"),
            "{m}"
        ),
        other => panic!("expected unsupported, got {:?}", other.map(|_| ())),
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_url_opens_a_schema() {
    let Some(url) = crate::postgres::url() else {
        return;
    };
    let schema = crate::postgres::fresh_schema();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = open(&format!("{url}{sep}schema={schema}")).await.unwrap();
    store.create_table(&TableSpec::new("Users")).await.unwrap();
    store
        .put("Users", Key::new("u1", "p"), attrs(json!({})))
        .await
        .unwrap();
    drop(store);
    crate::postgres::drop_schema(&url, &schema).await;
    match open(&format!("{url}{sep}schema=Bad-Name")).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "schema"),
        other => panic!("expected invalid schema, got {:?}", other.map(|_| ())),
    }
    // A server that is not there is unavailable (retryable), not a panic or a hang.
    let e = open("postgres://postgres@127.0.0.1:1/test")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test]
async fn missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/no/such/dir/agentry.db", dir.path().display());
    match open(&url).await {
        Err(e @ Error::Open(_)) => assert!(
            e.to_string().contains("does not exist") && e.to_string().contains("no/such/dir"),
            "{e}"
        ),
        other => panic!("expected an open error, got {:?}", other.map(|_| ())),
    }
    assert!(!dir.path().join("no").exists(), "nothing created");
}

#[tokio::test]
async fn unwritable_directory_is_an_open_error() {
    // /proc refuses new files even to root, unlike a chmod-ed directory.
    match open("sqlite:///proc/agentry-test.db").await {
        Err(e @ Error::Open(_)) => assert!(e.to_string().contains("/proc/agentry-test.db"), "{e}"),
        other => panic!("expected an open error, got {:?}", other.map(|_| ())),
    }
}

const READ_ONLY_CHILD: &str = "AGENTRY_STORAGE_READ_ONLY_CHILD";

/// Not a test of its own: run as an unprivileged user by the test below, it tries to open the
/// store its variable names and prints what happened. Without the variable it returns.
#[tokio::test]
async fn read_only_child_entry() {
    let Ok(url) = std::env::var(READ_ONLY_CHILD) else {
        return;
    };
    match open(&url).await {
        Ok(_) => println!("result: opened"),
        Err(e @ Error::Open(_)) => println!("result: open error: {e}"),
        Err(e) => println!("result: other error: {e}"),
    }
}

#[tokio::test]
async fn read_only_database_is_an_open_error_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = open(&url).await.unwrap();
        store.create_table(&TableSpec::new("Users")).await.unwrap();
        store
            .put("Users", Key::new("u1", "p"), attrs(json!({"kept": true})))
            .await
            .unwrap();
    }
    let set_mode = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    for f in ["ro.db", "ro.db-wal", "ro.db-shm"] {
        let p = dir.path().join(f);
        if p.exists() {
            set_mode(&p, 0o444);
        }
    }
    set_mode(dir.path(), 0o555);
    let message = if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        // Root ignores file modes: try as an unprivileged user instead.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "resolver::read_only_child_entry", "--nocapture"])
            .env(READ_ONLY_CHILD, &url)
            .uid(65534)
            .gid(65534)
            .output();
        let stdout = out
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        match stdout.lines().find_map(|l| l.strip_prefix("result: ")) {
            Some(result) => result.to_owned(),
            None => {
                // The test binary may sit where that user cannot reach it (under /root).
                set_mode(dir.path(), 0o755);
                eprintln!(
                    "skipped: running as root and the test binary cannot run as nobody: {out:?}"
                );
                return;
            }
        }
    } else {
        match open(&url).await {
            Ok(_) => "opened".to_owned(),
            Err(e @ Error::Open(_)) => format!("open error: {e}"),
            Err(e) => format!("other error: {e}"),
        }
    };
    set_mode(dir.path(), 0o755);
    for f in ["ro.db", "ro.db-wal", "ro.db-shm"] {
        let p = dir.path().join(f);
        if p.exists() {
            set_mode(&p, 0o644);
        }
    }
    eprintln!("read-only database: {message}");
    assert!(
        message.starts_with("open error: ") && message.contains("ro.db"),
        "{message}"
    );
    let store = open(&url).await.unwrap();
    let item = store.get("Users", &Key::new("u1", "p")).await.unwrap();
    assert_eq!(item.expect("item kept").attributes["kept"], json!(true));
}

#[tokio::test]
async fn foreign_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let content = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    match open(&format!("sqlite://{}", path.display())).await {
        Err(e @ Error::Open(_)) => assert!(e.to_string().contains("notes.db"), "{e}"),
        other => panic!("expected an open error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        content,
        "the file is untouched"
    );
}

#[tokio::test]
async fn newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = open(&url).await.unwrap();
        store.create_table(&TableSpec::new("Users")).await.unwrap();
        store
            .put("Users", Key::new("u1", "p"), attrs(json!({"kept": true})))
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = 999", [])
        .unwrap();
    drop(conn);
    match open(&url).await {
        Err(e @ Error::Open(_)) => assert!(e.to_string().contains("999"), "{e}"),
        other => panic!("expected an open error, got {:?}", other.map(|_| ())),
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = 1", [])
        .unwrap();
    drop(conn);
    let store = open(&url).await.unwrap();
    assert!(
        store
            .get("Users", &Key::new("u1", "p"))
            .await
            .unwrap()
            .is_some()
    );
}
