//! The contract document and the crate must agree: the columns and footer
//! keys `FEATURE-FILE.md` lists are exactly the ones the code writes.

use featurefile::{columns, keys, FORMAT, ROWS_PER_GROUP};

fn document() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("FEATURE-FILE.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The section of the document under the `## ` heading that starts with `title`.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc.find(&format!("\n## {title}")).unwrap_or_else(|| panic!("no section {title:?}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

/// The first cell of each table row (backquotes removed), header and rule left out.
fn first_cells(section: &str) -> Vec<(String, Vec<String>)> {
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect();
            (cells[0].trim_matches('`').to_string(), cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn the_documented_columns_are_the_crates() {
    let doc = document();
    let rows = first_cells(section(&doc, "Shape"));
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, columns::ALL, "FEATURE-FILE.md's column table and featurefile::columns::ALL differ");
    let types: Vec<&str> = rows.iter().map(|(_, c)| c[0].as_str()).collect();
    assert_eq!(types, ["Utf8", "Int32", "Utf8"]);
    assert!(doc.contains(&format!("row groups of at most {ROWS_PER_GROUP} rows")), "row group size");
}

#[test]
fn the_documented_footer_keys_are_the_crates() {
    let doc = document();
    let rows = first_cells(section(&doc, "Key-value metadata"));
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, keys::ALL, "FEATURE-FILE.md's key table and featurefile::keys::ALL differ");
    assert_eq!(rows[0].1[0], format!("`{FORMAT}`"), "the documented format is the one the crate writes");
    assert!(doc.starts_with(&format!("# The feature file (contract v{FORMAT})")));
}
