//! Query SQL shared by the SQL backends: both store items, index entries and changes in the
//! same relational shape and differ only in placeholders.

use crate::error::Result;
use crate::item::{Item, Key, Page, Query, SortRange};
use crate::plan;
use crate::rules::{self, Cursor};

/// A bound parameter.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// A query's SQL. Its rows are `(pk, sk, version, attrs, isk)`; `isk` is the index sort value
/// (for table queries it repeats `sk`).
pub struct Built {
    pub sql: String,
    pub params: Vec<Param>,
}

/// Placeholder style: SQLite's `?N` or PostgreSQL's `$N`.
#[derive(Clone, Copy)]
pub enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }
}

/// Builds the SQL for one page (fetching `limit + 1` rows to know whether more follow).
pub fn query_sql(q: &Query, limit: u32, now: i64, dialect: Dialect) -> Result<Built> {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
    };
    let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let (cmp, order) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql;
    let sort_col;
    match &q.index {
        None => {
            let tbl = b.bind(Param::Text(q.table.clone()));
            let pk = b.bind(Param::Text(q.partition.clone()));
            let now = b.bind(Param::Int(now));
            sql = format!(
                "SELECT pk, sk, version, attrs, sk FROM items WHERE tbl = {tbl} AND pk = {pk} \
                 AND (expires_at IS NULL OR expires_at > {now})"
            );
            sort_col = "sk";
            if let Some(c) = cursor {
                let sk = b.bind(Param::Text(c.sk));
                sql += &format!(" AND sk {cmp} {sk}");
            }
        }
        Some(index) => {
            let tbl = b.bind(Param::Text(q.table.clone()));
            let idx = b.bind(Param::Text(index.clone()));
            let ipk = b.bind(Param::Text(q.partition.clone()));
            let now = b.bind(Param::Int(now));
            sql = format!(
                "SELECT i.pk, i.sk, i.version, i.attrs, e.isk FROM index_entries e \
                 JOIN items i ON i.tbl = e.tbl AND i.pk = e.pk AND i.sk = e.sk \
                 WHERE e.tbl = {tbl} AND e.idx = {idx} AND e.ipk = {ipk} \
                 AND (i.expires_at IS NULL OR i.expires_at > {now})"
            );
            sort_col = "e.isk";
            if let Some(c) = cursor {
                let isk = b.bind(Param::Text(c.isk.unwrap_or_default()));
                let pk = b.bind(Param::Text(c.pk));
                let sk = b.bind(Param::Text(c.sk));
                sql += &format!(" AND (e.isk, e.pk, e.sk) {cmp} ({isk}, {pk}, {sk})");
            }
        }
    }
    match &q.range {
        None => {}
        Some(SortRange::Between(lo, hi)) => {
            let lo = b.bind(Param::Text(lo.clone()));
            let hi = b.bind(Param::Text(hi.clone()));
            sql += &format!(" AND {sort_col} >= {lo} AND {sort_col} <= {hi}");
        }
        Some(SortRange::From(lo)) => {
            let lo = b.bind(Param::Text(lo.clone()));
            sql += &format!(" AND {sort_col} >= {lo}");
        }
        Some(SortRange::To(hi)) => {
            let hi = b.bind(Param::Text(hi.clone()));
            sql += &format!(" AND {sort_col} <= {hi}");
        }
        Some(SortRange::Prefix(p)) => {
            let upper = rules::prefix_upper_bound(p);
            let lo = b.bind(Param::Text(p.clone()));
            sql += &format!(" AND {sort_col} >= {lo}");
            if let Some(upper) = upper {
                let hi = b.bind(Param::Text(upper));
                sql += &format!(" AND {sort_col} < {hi}");
            }
        }
    }
    sql += &match &q.index {
        None => format!(" ORDER BY sk {order}"),
        Some(_) => format!(" ORDER BY e.isk {order}, e.pk {order}, e.sk {order}"),
    };
    let n = b.bind(Param::Int(i64::from(limit) + 1));
    sql += &format!(" LIMIT {n}");
    Ok(Built {
        sql,
        params: b.params,
    })
}

/// A query row: `(pk, sk, version, attrs, isk)`.
pub type Row = (String, String, i64, String, String);

/// Turns `limit + 1` fetched rows into a page.
pub fn page(rows: Vec<Row>, limit: u32, index: bool) -> Result<Page> {
    let more = rows.len() > limit as usize;
    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    let mut last = None;
    for (pk, sk, version, attrs, isk) in rows.into_iter().take(limit as usize) {
        let key = Key { pk, sk };
        let attributes = plan::attributes_from_json(&key, &attrs)?;
        last = Some(Cursor {
            isk: index.then_some(isk),
            pk: key.pk.clone(),
            sk: key.sk.clone(),
        });
        items.push(Item {
            key,
            attributes,
            version: version as u64,
        });
    }
    let cursor = if more { last.map(|c| c.encode()) } else { None };
    Ok(Page { items, cursor })
}
