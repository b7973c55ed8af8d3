//! `bitshoal info`: describe a `.torrent` file or a magnet link, as text or as one JSON object.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;

use bitshoal_core::id::InfoHashes;
use bitshoal_core::magnet::Magnet;
use bitshoal_core::metainfo::{FileEntry, Metainfo, Version};
use clap::Args;
use serde_json::{json, Value};

use super::CliResult;

/// The keys of `--json`, shown in `bitshoal info --help`.
const JSON_KEYS: &str = "\
JSON output (--json) is one object. These keys stay stable.
For a .torrent file:
  kind               \"torrent\"
  name               the torrent's name
  version            \"v1\", \"v2\" or \"hybrid\"
  info_hash_v1       40 hex digits, or null for v2-only torrents
  info_hash_v2       64 hex digits, or null for v1-only torrents
  content_size       bytes of all files, padding excluded
  total_size         bytes of the piece stream, padding included (libtorrent's total_size)
  piece_length       bytes per piece
  piece_count        number of pieces
  private            true for a private torrent (BEP 27)
  files              all files in torrent order, padding included (--show-pad and
                     --files-limit only change the text), each an object with keys
                     path, size, offset, pad, executable, hidden, symlink, symlink_target
  trackers           tracker tiers: a list of lists of URLs (BEP 12)
  web_seeds          URLs (BEP 19 url-list)
  http_seeds         URLs (BEP 17 httpseeds)
  dht_nodes          objects with keys host and port (BEP 5 nodes)
  similar            info-hashes of similar torrents, hex (BEP 38)
  collections        collection names (BEP 38)
  comment            text or null
  created_by         text or null
  creation_date      seconds since 1970-01-01 UTC, or null
  creation_date_iso  the same as YYYY-MM-DDTHH:MM:SSZ, or null
For a magnet link:
  kind               \"magnet\"
  name               the display name (dn), or null
  version, info_hash_v1, info_hash_v2   as above (from xt)
  exact_length       bytes (xl), or null
  trackers           tiers as above, one tracker (tr) per tier, as libtorrent reads them
  web_seeds          URLs (ws)
  peers              host:port strings (x.pe)
  select_only        file index ranges [first, last] (so, BEP 53), or null";

/// Arguments of `bitshoal info`.
#[derive(Debug, Args)]
#[command(after_long_help = JSON_KEYS)]
pub(crate) struct InfoArgs {
    /// A .torrent file, or a magnet link (magnet:?xt=...).
    torrent: String,
    /// Print one JSON object instead of text (keys: see --help).
    #[arg(long)]
    json: bool,
    /// List padding files (BEP 47) too; by default they are only counted.
    #[arg(long)]
    show_pad: bool,
    /// Show at most N files [default: all].
    #[arg(long, value_name = "N", conflicts_with = "json")]
    files_limit: Option<usize>,
}

/// Runs `bitshoal info`.
pub(crate) fn run(args: InfoArgs) -> CliResult {
    if is_magnet(&args.torrent) {
        let magnet =
            Magnet::parse(&args.torrent).map_err(|e| format!("{}: {e}", shown(&args.torrent)))?;
        if args.json {
            print_json(&magnet_json(&magnet));
        } else {
            print!("{}", magnet_text(&magnet));
        }
        return Ok(());
    }
    let path = PathBuf::from(&args.torrent);
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", shown(&path.to_string_lossy()));
    let bytes = std::fs::read(&path).map_err(|e| fail(&e))?;
    let meta = Metainfo::from_bytes(&bytes).map_err(|e| fail(&e))?;
    if args.json {
        print_json(&torrent_json(&meta));
    } else {
        print!("{}", torrent_text(&meta, args.show_pad, args.files_limit));
    }
    Ok(())
}

/// Whether the argument is a magnet link rather than a file name (as [`Magnet::parse`] reads
/// it: surrounding whitespace trimmed, the scheme in any case).
fn is_magnet(arg: &str) -> bool {
    arg.trim_start()
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
}

/// A file name or link for an error line: control characters escaped, long links shortened.
fn shown(arg: &str) -> String {
    const MAX_CHARS: usize = 100;
    let mut text = clean(arg).into_owned();
    if let Some((cut, _)) = text.char_indices().nth(MAX_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    println!("{text}");
}

/// A magnet link as one JSON object (keys documented in [`JSON_KEYS`]).
fn magnet_json(magnet: &Magnet) -> Value {
    let hashes = magnet.info_hashes();
    let (v1, v2) = hashes_hex(&hashes);
    let tiers: Vec<Vec<&String>> = magnet.trackers().iter().map(|t| vec![t]).collect();
    let peers: Vec<String> = magnet.peers().iter().map(ToString::to_string).collect();
    let select_only = magnet.select_only().map(|so| {
        so.ranges()
            .iter()
            .map(|r| json!([r.start(), r.end()]))
            .collect::<Vec<_>>()
    });
    json!({
        "kind": "magnet",
        "name": magnet.display_name(),
        "version": version_name(version_of(&hashes)),
        "info_hash_v1": v1,
        "info_hash_v2": v2,
        "exact_length": magnet.exact_length(),
        "trackers": tiers,
        "web_seeds": magnet.web_seeds(),
        "peers": peers,
        "select_only": select_only,
    })
}

/// A magnet link as text for a terminal.
fn magnet_text(magnet: &Magnet) -> String {
    let mut out = String::new();
    let hashes = magnet.info_hashes();
    line(
        &mut out,
        "name",
        &magnet.display_name().map_or(Cow::Borrowed("(none)"), clean),
    );
    line(&mut out, "version", version_text(version_of(&hashes)));
    hashes_text(&mut out, &hashes);
    if let Some(len) = magnet.exact_length() {
        line(&mut out, "size", &size_text(len));
    }
    if magnet.trackers().is_empty() {
        line(&mut out, "trackers", "none");
    } else {
        out.push_str("trackers:\n");
        for (i, url) in magnet.trackers().iter().enumerate() {
            let _ = writeln!(out, "  tier {}: {}", i + 1, clean(url));
        }
    }
    list(
        &mut out,
        "web seeds",
        magnet.web_seeds().iter().map(|u| clean(u)),
    );
    list(
        &mut out,
        "peers",
        magnet
            .peers()
            .iter()
            .map(|p| Cow::Owned(clean(&p.to_string()).into_owned())),
    );
    if let Some(so) = magnet.select_only() {
        line(&mut out, "select only", &format!("files {so} (BEP 53)"));
    }
    line(
        &mut out,
        "files",
        "not known until the metadata is fetched (BEP 9)",
    );
    out
}

/// The version a set of info-hashes implies.
fn version_of(hashes: &InfoHashes) -> Version {
    match hashes {
        InfoHashes::V1(_) => Version::V1,
        InfoHashes::V2(_) => Version::V2,
        InfoHashes::Hybrid(..) => Version::Hybrid,
    }
}

/// The version as text, with the BEPs that define it.
fn version_text(version: Version) -> &'static str {
    match version {
        Version::V1 => "v1 (BEP 3)",
        Version::V2 => "v2 (BEP 52)",
        Version::Hybrid => "hybrid (v1 + v2)",
    }
}

/// The `info-hash v1` and `info-hash v2` lines, for the hashes present.
fn hashes_text(out: &mut String, hashes: &InfoHashes) {
    if let Some(h) = hashes.v1() {
        line(out, "info-hash v1", &h.to_string());
    }
    if let Some(h) = hashes.v2() {
        line(out, "info-hash v2", &h.to_string());
    }
}

/// `"v1"`, `"v2"` or `"hybrid"`.
fn version_name(version: Version) -> &'static str {
    match version {
        Version::V1 => "v1",
        Version::V2 => "v2",
        Version::Hybrid => "hybrid",
    }
}

/// The v1 and v2 hashes as hex, each `None` when absent.
fn hashes_hex(hashes: &InfoHashes) -> (Option<String>, Option<String>) {
    (
        hashes.v1().map(|h| h.to_string()),
        hashes.v2().map(|h| h.to_string()),
    )
}

/// The torrent as one JSON object (keys documented in [`JSON_KEYS`]).
fn torrent_json(meta: &Metainfo) -> Value {
    let info = meta.info();
    let (v1, v2) = hashes_hex(&info.hashes());
    let files: Vec<Value> = info
        .files()
        .iter()
        .map(|f| {
            let a = f.attributes();
            json!({
                "path": f.path().as_str(),
                "size": f.length(),
                "offset": f.offset(),
                "pad": a.pad,
                "executable": a.executable,
                "hidden": a.hidden,
                "symlink": a.symlink,
                "symlink_target": f.symlink_target().map(|t| t.as_str()),
            })
        })
        .collect();
    let similar: Vec<Value> = meta
        .similar()
        .iter()
        .map(|h| {
            let (v1, v2) = hashes_hex(h);
            json!(v1.or(v2))
        })
        .collect();
    let nodes: Vec<Value> = meta
        .nodes()
        .iter()
        .map(|n| json!({"host": n.host, "port": n.port}))
        .collect();
    json!({
        "kind": "torrent",
        "name": info.name(),
        "version": version_name(info.version()),
        "info_hash_v1": v1,
        "info_hash_v2": v2,
        "content_size": info.content_length(),
        "total_size": info.layout().total_length(),
        "piece_length": info.piece_length(),
        "piece_count": info.layout().piece_count(),
        "private": info.is_private(),
        "files": files,
        "trackers": meta.trackers(),
        "web_seeds": meta.url_list(),
        "http_seeds": meta.http_seeds(),
        "dht_nodes": nodes,
        "similar": similar,
        "collections": meta.collections(),
        "comment": meta.comment(),
        "created_by": meta.created_by(),
        "creation_date": meta.creation_date(),
        "creation_date_iso": meta.creation_date().and_then(iso8601_utc),
    })
}

/// The torrent as text for a terminal.
fn torrent_text(meta: &Metainfo, show_pad: bool, files_limit: Option<usize>) -> String {
    let info = meta.info();
    let mut out = String::new();
    line(&mut out, "name", &clean(info.name()));
    line(&mut out, "version", version_text(info.version()));
    hashes_text(&mut out, &info.hashes());
    line(&mut out, "size", &size_text(info.content_length()));
    let pads: Vec<&FileEntry> = info.files().iter().filter(|f| f.is_pad()).collect();
    if !pads.is_empty() {
        let pad_bytes: u64 = pads.iter().map(|f| f.length()).sum();
        line(
            &mut out,
            "padding",
            &format!("{} in {} pad file(s)", size_text(pad_bytes), pads.len()),
        );
    }
    line(
        &mut out,
        "pieces",
        &format!(
            "{} × {}",
            info.layout().piece_count(),
            size_text(info.piece_length().into())
        ),
    );
    line(
        &mut out,
        "private",
        if info.is_private() { "yes" } else { "no" },
    );
    if let Some(c) = meta.created_by() {
        line(&mut out, "created by", &clean(c));
    }
    if let Some(t) = meta.creation_date() {
        let date = match iso8601_utc(t) {
            Some(iso) => format!("{iso} ({t})"),
            None => t.to_string(),
        };
        line(&mut out, "creation date", &date);
    }
    if let Some(c) = meta.comment() {
        line(&mut out, "comment", &clean(c));
    }

    let tiers = meta.trackers();
    if tiers.is_empty() {
        line(&mut out, "trackers", "none");
    } else {
        out.push_str("trackers:\n");
        for (i, tier) in tiers.iter().enumerate() {
            for url in tier {
                let _ = writeln!(out, "  tier {}: {}", i + 1, clean(url));
            }
        }
    }
    list(
        &mut out,
        "web seeds",
        meta.url_list().iter().map(|u| clean(u)),
    );
    list(
        &mut out,
        "http seeds",
        meta.http_seeds().iter().map(|u| clean(u)),
    );
    list(
        &mut out,
        "DHT nodes",
        meta.nodes().iter().map(|n| {
            if n.host.contains(':') {
                Cow::Owned(format!("[{}]:{}", clean(&n.host), n.port))
            } else {
                Cow::Owned(format!("{}:{}", clean(&n.host), n.port))
            }
        }),
    );
    list(
        &mut out,
        "similar",
        meta.similar().iter().map(|h| {
            let (v1, v2) = hashes_hex(h);
            Cow::Owned(v1.or(v2).unwrap_or_default())
        }),
    );
    list(
        &mut out,
        "collections",
        meta.collections().iter().map(|c| clean(c)),
    );

    let shown: Vec<&FileEntry> = info
        .files()
        .iter()
        .filter(|f| show_pad || !f.is_pad())
        .collect();
    let limit = files_limit.unwrap_or(usize::MAX);
    let mut heading = format!("{}", info.files().len() - pads.len());
    if !pads.is_empty() {
        if show_pad {
            let _ = write!(heading, " + {} pad", pads.len());
        } else {
            let _ = write!(
                heading,
                " ({} pad files not shown; --show-pad lists them)",
                pads.len()
            );
        }
    }
    line(&mut out, "files", &heading);
    let width = shown
        .iter()
        .map(|f| f.length().to_string().len())
        .max()
        .unwrap_or(1);
    for f in shown.iter().take(limit) {
        let _ = writeln!(out, "{}", file_line(f, width));
    }
    if shown.len() > limit {
        let _ = writeln!(
            out,
            "  ... and {} more (--files-limit {limit})",
            shown.len() - limit
        );
    }
    out
}

/// One `key: value` line, values aligned.
fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{:<15}{value}", format!("{key}:"));
}

/// A heading and one indented line per item, or nothing when there are none.
fn list<'a>(out: &mut String, heading: &str, items: impl Iterator<Item = Cow<'a, str>>) {
    let mut items = items.peekable();
    if items.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "{heading}:");
    for item in items {
        let _ = writeln!(out, "  {item}");
    }
}

/// One row of the file list: exact size (`width` digits), human size, BEP 47 attribute letters
/// (`p`ad, e`x`ecutable, `h`idden, symlink `l`), path.
fn file_line(f: &FileEntry, width: usize) -> String {
    let a = f.attributes();
    let attrs: String = [
        (a.pad, 'p'),
        (a.executable, 'x'),
        (a.hidden, 'h'),
        (a.symlink, 'l'),
    ]
    .iter()
    .map(|&(on, c)| if on { c } else { '-' })
    .collect();
    let mut row = format!(
        "  {:>width$}  {:>10}  {attrs}  {}",
        f.length(),
        human_size(f.length()),
        f.path()
    );
    if let Some(target) = f.symlink_target() {
        let _ = write!(row, " -> {target}");
    }
    row
}

/// `1.5 MiB (1572864 bytes)`, or `100 bytes` below a KiB.
fn size_text(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{} ({bytes} bytes)", human_size(bytes))
    }
}

/// A size in binary units with one decimal: `512 B`, `1.5 KiB`, `640.0 MiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Text from the torrent with control characters escaped, so a hostile comment or tracker URL
/// cannot drive the terminal.
fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`; `None` outside years 0–9999.
fn iso8601_utc(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01, by Howard
/// Hinnant's `civil_from_days` (eras of 400 years, years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        for (secs, want) in [
            (0, Some("1970-01-01T00:00:00Z")),
            (1_700_000_000, Some("2023-11-14T22:13:20Z")),
            (951_782_400, Some("2000-02-29T00:00:00Z")),
            (951_868_799, Some("2000-02-29T23:59:59Z")),
            (4_107_542_400, Some("2100-03-01T00:00:00Z")),
            (-1, Some("1969-12-31T23:59:59Z")),
            (253_402_300_799, Some("9999-12-31T23:59:59Z")),
            (253_402_300_800, None),
            (i64::MAX, None),
            (i64::MIN, None),
        ] {
            assert_eq!(iso8601_utc(secs).as_deref(), want, "{secs}");
        }
    }

    #[test]
    fn days_round_trip_through_every_day_of_four_centuries() {
        // Day numbers must advance one calendar day at a time, with valid months and days.
        let mut prev = civil_from_days(-1);
        for day in 0..146_097 {
            let (y, m, d) = civil_from_days(day);
            let next_day = (y, m, d) == (prev.0, prev.1, prev.2 + 1);
            let next_month = d == 1 && (y, m) == (prev.0, prev.1 + 1);
            let next_year = (m, d) == (1, 1) && y == prev.0 + 1 && prev.1 == 12;
            assert!(
                next_day || next_month || next_year,
                "{prev:?} -> {y}-{m}-{d}"
            );
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let month_len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            assert!(d <= month_len[m as usize - 1], "{y}-{m}-{d}");
            prev = (y, m, d);
        }
    }

    #[test]
    fn sizes() {
        for (bytes, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (655_360, "640.0 KiB"),
            (1 << 30, "1.0 GiB"),
            (u64::MAX, "16.0 EiB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
        assert_eq!(size_text(100), "100 bytes");
        assert_eq!(size_text(2048), "2.0 KiB (2048 bytes)");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("a\x1b[31mred\n"), "a\\u{1b}[31mred\\n");
        assert_eq!(clean("\u{9b}x"), "\\u{9b}x");
    }
}
