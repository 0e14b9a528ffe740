//! How answers are printed: `--output json` prints the server's JSON as
//! it is (pretty); `--output table`, for people, prints lists as aligned
//! columns and one object as `key: value` lines.
//!
//! Fields named `*_ms` holding a Unix time in milliseconds are shown as UTC
//! times in tables; JSON output keeps them as they are.

use clap::ValueEnum;
use serde_json::{Map, Value};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for lists, `key: value` lines for one object
    Table,
    /// The server's JSON, pretty-printed
    Json,
}

/// `value` pretty-printed, as `--output json` shows it.
pub fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// One object as `key: value` lines, keys aligned; arrays of objects in it
/// follow as indented tables under their key.
pub fn object(value: &Value) -> String {
    let Value::Object(map) = value else {
        return format!("{}\n", cell_text(value));
    };
    let (lists, scalars): (Vec<_>, Vec<_>) = map.iter().partition(|(_, v)| is_table(v));
    // The widest `key:` and its colon.
    let width = scalars.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, v) in scalars {
        out.push_str(&format!("{:width$}  {}\n", format!("{key}:"), cell(key, v)));
    }
    for (key, v) in lists {
        out.push_str(&format!("{key}:\n"));
        let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
        for line in table(rows, &[]).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// A non-empty array whose items are all objects.
fn is_table(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object))
}

/// Rows as aligned columns under a header. The columns are those of
/// `preferred` that some row has, or every field (in first-seen order)
/// when none of them occurs.
pub fn table(rows: &[Value], preferred: &[&str]) -> String {
    if rows.is_empty() {
        return "(none)\n".to_owned();
    }
    let empty = Map::new();
    let objects: Vec<&Map<String, Value>> = rows
        .iter()
        .map(|r| r.as_object().unwrap_or(&empty))
        .collect();
    if objects.iter().all(|o| o.is_empty()) {
        return rows.iter().map(|r| format!("{}\n", cell_text(r))).collect();
    }
    let mut columns: Vec<String> = preferred
        .iter()
        .filter(|c| objects.iter().any(|o| o.contains_key(**c)))
        .map(|c| (*c).to_owned())
        .collect();
    if columns.is_empty() {
        for o in &objects {
            for key in o.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    let cells: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            columns
                .iter()
                .map(|c| o.get(c).map_or_else(|| "-".to_owned(), |v| cell(c, v)))
                .collect()
        })
        .collect();
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(cells.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, w)| format!("{text:<w$}", w = *w))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One field's value in a table: times as UTC for `*_ms` keys.
fn cell(key: &str, v: &Value) -> String {
    match (key.ends_with("_ms"), v.as_u64()) {
        // After 2001-09-09 and before 2286: a Unix time in milliseconds.
        (true, Some(ms)) if (1_000_000_000_000..10_000_000_000_000).contains(&ms) => {
            utc(ms).unwrap_or_else(|| ms.to_string())
        }
        _ => cell_text(v),
    }
}

/// A value on one line: strings bare, `-` for null or an empty list, lists of strings
/// comma-separated, anything else as compact JSON.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.replace(['\n', '\r'], " "),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

fn utc(ms: u64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    Some(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_aligned_columns_of_the_preferred_fields() {
        let rows = [
            json!({"id": "acme", "display_name": "Acme Corp", "secret": "x"}),
            json!({"id": "b", "display_name": null}),
        ];
        assert_eq!(
            table(&rows, &["id", "display_name", "home_region"]),
            "ID    DISPLAY_NAME\nacme  Acme Corp\nb     -\n"
        );
        assert_eq!(table(&rows[1..], &["nothing"]), "ID  DISPLAY_NAME\nb   -\n");
        assert_eq!(table(&[], &["id"]), "(none)\n");
    }

    #[test]
    fn one_object_is_key_value_lines_with_times_in_utc() {
        let v = json!({"id": "acme", "created_at_ms": 1_800_000_000_000u64,
            "grant_types": ["a", "b"], "members": [{"id": 1, "role": "leader"}]});
        assert_eq!(
            object(&v),
            "id:             acme\ncreated_at_ms:  2027-01-15T08:00:00Z\n\
             grant_types:    a,b\nmembers:\n  ID  ROLE\n  1   leader\n"
        );
    }
}
