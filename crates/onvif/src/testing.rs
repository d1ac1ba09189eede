//! Test support (not used by the server): schema validation of a response envelope's body
//! against the ONVIF schemas in `testdata/xsd` with `xmllint` (Debian `libxml2-utils`).
//! This module runs a program and writes files; the rest of the crate does no I/O.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Service WSDLs whose `<xs:schema>` is extracted, and the schema file name written.
const WSDLS: [(&str, &str); 9] = [
    ("devicemgmt.wsdl", "device.xsd"),
    ("media.wsdl", "media.xsd"),
    ("deviceio.wsdl", "deviceio.xsd"),
    ("recording.wsdl", "recording.xsd"),
    ("search.wsdl", "search.xsd"),
    ("replay.wsdl", "replay.xsd"),
    ("events.wsdl", "events.xsd"),
    ("ptz.wsdl", "ptz.xsd"),
    ("imaging.wsdl", "imaging.xsd"),
];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/xsd")
}

/// Prepares `dir` (created if needed): the shipped schemas, each service schema as a
/// file, and `all.xsd` importing them all. Returns the path of `all.xsd`.
pub fn prepare_schemas(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = source_dir();
    let entries = std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, dir.join(name)).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let mut imports = String::new();
    for (wsdl, xsd) in WSDLS {
        let text = std::fs::read_to_string(src.join(wsdl))
            .map_err(|e| format!("{}: {e}", src.join(wsdl).display()))?;
        let root_start = text
            .find("<wsdl:definitions")
            .ok_or_else(|| format!("{wsdl}: no wsdl:definitions"))?;
        let root_end = text[root_start..]
            .find('>')
            .map(|i| root_start + i)
            .ok_or_else(|| format!("{wsdl}: unterminated root tag"))?;
        let root_attrs = &text[root_start + "<wsdl:definitions".len()..root_end];
        let s = text
            .find("<xs:schema")
            .ok_or_else(|| format!("{wsdl}: no xs:schema"))?;
        let e = text
            .find("</xs:schema>")
            .ok_or_else(|| format!("{wsdl}: no </xs:schema>"))?;
        let schema = &text[s..e + "</xs:schema>".len()];
        // Carry the root's namespace declarations the schema relies on (tds:, trt:, ...).
        let decls: String = root_attrs
            .split_whitespace()
            .filter(|a| {
                a.starts_with("xmlns:") && !schema.contains(a.split('=').next().unwrap_or(""))
            })
            .map(|a| format!(" {a}"))
            .collect();
        let schema = schema.replacen("<xs:schema", &format!("<xs:schema{decls}"), 1);
        std::fs::write(
            dir.join(xsd),
            format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{schema}\n"),
        )
        .map_err(|e| format!("{xsd}: {e}"))?;
        let tns = schema
            .split("targetNamespace=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .ok_or_else(|| format!("{wsdl}: no targetNamespace"))?;
        imports += &format!("<xs:import namespace=\"{tns}\" schemaLocation=\"{xsd}\"/>\n");
    }
    let all = dir.join("all.xsd");
    std::fs::write(
        &all,
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" targetNamespace=\"urn:ipcamd:onvif-bundle\">\n<xs:import namespace=\"http://www.onvif.org/ver10/schema\" schemaLocation=\"onvif.xsd\"/>\n{imports}</xs:schema>\n"),
    )
    .map_err(|e| format!("all.xsd: {e}"))?;
    Ok(all)
}

/// The first element of the envelope's Body as a standalone document, with the
/// envelope's namespace declarations copied onto it.
pub fn body_document(envelope: &str) -> Result<String, String> {
    let env_start = envelope.find("<env:Envelope").ok_or("no <env:Envelope")?;
    let env_end = envelope[env_start..]
        .find('>')
        .ok_or("unterminated Envelope tag")?
        + env_start;
    let decls = &envelope[env_start + "<env:Envelope".len()..env_end];
    let b = envelope.find("<env:Body>").ok_or("no <env:Body>")? + "<env:Body>".len();
    let e = envelope.rfind("</env:Body>").ok_or("no </env:Body>")?;
    let inner = &envelope[b..e];
    let name_end = inner
        .find([' ', '>', '/'])
        .ok_or("no element in the Body")?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}{decls}{}",
        &inner[..name_end],
        &inner[name_end..]
    ))
}

/// Validates the Body of `envelope` against `all_xsd` with xmllint; Err holds xmllint's
/// complaint. `scratch` is a file path to write the document to.
pub fn validate(envelope: &str, all_xsd: &Path, scratch: &Path) -> Result<(), String> {
    let doc = body_document(envelope)?;
    std::fs::write(scratch, doc).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(all_xsd)
        .arg(scratch)
        .output()
        .map_err(|e| format!("cannot run xmllint (apt-get install libxml2-utils): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
