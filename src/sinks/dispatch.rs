//! Dispatch packages for rectification teams (一市一单): per city and county a
//! GeoJSON, a CSV that opens in a spreadsheet with Chinese intact (UTF-8 with
//! BOM), and a printable, self-contained HTML page with before/after
//! true-colour chips (PNG, embedded) and an overview map (inline SVG).

use super::cases::Rollup;
use crate::domain::case::Listing;
use crate::domain::chiefs::{ChiefLink, Registry};
use crate::domain::class::ChangeClass;
use crate::domain::detection::{Detection, SegmentLink};
use crate::domain::grid::Grid;
use crate::domain::manifest::Manifest;
use crate::domain::rivers::Segment;
use crate::error::{Error, Result};
use crate::io::crs::Transformer;
use crate::io::raster::TileReader;
use crate::io::write_atomic;
use base64::Engine as _;
use geo::{BoundingRect, Centroid, MultiPolygon};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Folder name used when a polygon's chain has no city or county chief.
pub const UNASSIGNED: &str = "未分配-unassigned";

/// Writes `OUT/dispatch/` anew: built in a temporary folder, then swapped in,
/// so a crash never leaves a half-written or stale package behind.
///
/// # Errors
/// Unwritable output, unreadable rasters for the chips.
pub fn write_packages(
    out: &Path,
    feats: &[Detection],
    m: &Manifest,
    segments: &[Segment],
    reg: &Registry,
    cases: Option<&[Rollup]>,
) -> Result<()> {
    let tmp = out.join(format!(".dispatch.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut groups: BTreeMap<(String, String), Vec<&Detection>> = BTreeMap::new();
    for f in feats {
        if f.case
            .as_ref()
            .is_some_and(|c| c.case_listing == Listing::Suppressed)
        {
            continue;
        }
        groups.entry(place(f)).or_default().push(f);
    }
    for list in groups.values_mut() {
        // By case: new and reappeared first, then the open ones, oldest
        // first; records without a case keep their order.
        list.sort_by_key(|f| case_order(f));
    }
    let mut chips = Chips::new(m, cases.map(|_| out.join("chips")));
    for ((city, county), list) in &groups {
        let dir = tmp.join(city);
        super::geojson::write(&dir.join(format!("{county}.geojson")), list.iter().copied())?;
        let table = csv(list)
            .map_err(|e| Error::invalid(dir.join(format!("{county}.csv")), e.to_string()))?;
        write_atomic(&dir.join(format!("{county}.csv")), &table)?;
        write_atomic(
            &dir.join(format!("{county}.html")),
            html((city, county), list, segments, reg, &mut chips)?.as_bytes(),
        )?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    if let Some(rollup) = cases {
        write_atomic(
            &tmp.join("supervision.csv"),
            &supervision_csv(rollup)
                .map_err(|e| Error::invalid(tmp.join("supervision.csv"), e.to_string()))?,
        )?;
        write_atomic(
            &tmp.join("supervision.html"),
            supervision_html(rollup).as_bytes(),
        )?;
    }
    let final_dir = out.join("dispatch");
    let old = out.join(format!(".dispatch.old{}", std::process::id()));
    if final_dir.exists() {
        std::fs::rename(&final_dir, &old).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The city and county a record is dispatched to ([`UNASSIGNED`] when its
/// chain has no chief of that level).
pub fn place(f: &Detection) -> (String, String) {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| UNASSIGNED.to_string());
    let c = f.chief.clone().unwrap_or_default();
    (or(&c.city), or(&c.county))
}

/// Segment and chief of a record (empty when it is not linked).
fn links(f: &Detection) -> (SegmentLink, ChiefLink) {
    (
        f.segment.clone().unwrap_or_default(),
        f.chief.clone().unwrap_or_default(),
    )
}

/// True when the record's chain has no city or no county chief, so its
/// package goes to [`UNASSIGNED`].
pub fn unassigned(f: &Detection) -> bool {
    f.chief
        .as_ref()
        .map_or(true, |c| c.city.is_none() || c.county.is_none())
}

/// Sort key of a record in a package by case: listing (new, reappeared,
/// open), then oldest first, then case id.
fn case_order(f: &Detection) -> (u8, i64, String) {
    match &f.case {
        None => (0, 0, String::new()),
        Some(c) => (
            match c.case_listing {
                Listing::New => 0,
                Listing::Reappeared => 1,
                Listing::Open => 2,
                Listing::Suppressed => 3,
            },
            -c.age_days,
            c.case_id.clone(),
        ),
    }
}

fn centroid(f: &Detection) -> (f64, f64) {
    f.geometry.centroid().map_or((0.0, 0.0), |c| (c.x(), c.y()))
}

/// A number as JSON writes it (`19700.0`, `0.95`), as in the GeoJSON.
fn json_num(v: f64) -> String {
    serde_json::Value::from(v).to_string()
}

const CSV_HEADER: [&str; 18] = [
    "id",
    "class",
    "class_zh",
    "obstructs_flood_channel",
    "area_m2",
    "confidence",
    "river",
    "segment_id",
    "chief_id",
    "chief_title",
    "chain",
    "city",
    "county",
    "centroid_lon",
    "centroid_lat",
    "tiles",
    "before_date",
    "after_date",
];

fn csv_row(f: &Detection) -> [String; 18] {
    let (x, y) = centroid(f);
    let (seg, chief) = links(f);
    let flag = if f.obstructs_flood_channel {
        " 妨碍行洪"
    } else {
        ""
    };
    [
        f.id.clone(),
        f.class.as_str().to_string(),
        format!("{}{flag}", f.class.zh()),
        f.obstructs_flood_channel.to_string(),
        json_num(f.area_m2),
        json_num(f.confidence),
        seg.river,
        seg.segment_id,
        chief.chief_id,
        chief.chief_title,
        chief.chain.join(" > "),
        chief.city.unwrap_or_default(),
        chief.county.unwrap_or_default(),
        format!("{x:.6}"),
        format!("{y:.6}"),
        f.tiles.join(" "),
        f.before_date.clone(),
        f.after_date.clone(),
    ]
}

/// The CSV table: UTF-8 with a BOM so spreadsheet programs read the
/// Chinese correctly, CRLF line ends.
fn csv(list: &[&Detection]) -> std::result::Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::from("\u{feff}".as_bytes()));
    let by_case = list.iter().any(|f| f.case.is_some());
    let case_header = [
        "case_id",
        "case_status",
        "listing",
        "first_seen",
        "age_days",
        "overdue",
    ];
    // Case columns go after the standard ones, so readers of the
    // standard table keep their column positions.
    if by_case {
        w.write_record(CSV_HEADER.iter().chain(case_header.iter()))?;
    } else {
        w.write_record(CSV_HEADER)?;
    }
    for f in list {
        match (&f.case, by_case) {
            (Some(c), _) => w.write_record(csv_row(f).into_iter().chain([
                c.case_id.clone(),
                c.case_status.as_str().to_string(),
                c.case_listing.heading().to_string(),
                c.first_seen.clone(),
                c.age_days.to_string(),
                c.overdue.to_string(),
            ]))?,
            (None, true) => w.write_record(
                csv_row(f)
                    .into_iter()
                    .chain(std::iter::repeat(String::new()).take(case_header.len())),
            )?,
            (None, false) => w.write_record(csv_row(f))?,
        }
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Reads chips from the tiles' rasters, one open reader per tile.
struct Chips<'a> {
    m: &'a Manifest,
    open: BTreeMap<String, Option<(TileReader, Transformer)>>,
    /// Where the chips of case records are also written as files.
    files: Option<std::path::PathBuf>,
}

/// The chip files of a record kept in a case store: `OUT/chips/<id>_before.png`
/// and `_after.png`.
pub fn chip_paths(out: &Path, id: &str) -> [std::path::PathBuf; 2] {
    let dir = out.join("chips");
    [
        dir.join(format!("{id}_before.png")),
        dir.join(format!("{id}_after.png")),
    ]
}

impl<'a> Chips<'a> {
    fn new(m: &'a Manifest, files: Option<std::path::PathBuf>) -> Self {
        Chips {
            m,
            open: BTreeMap::new(),
            files,
        }
    }

    /// Before and after chips (data URIs: true colour before, after, false
    /// colour before, after) around a polygon, outline drawn, and the scale
    /// bar's length in metres; for a case record the true-colour chips are
    /// also written as files.
    fn get(&mut self, f: &Detection) -> Option<([String; 4], f64)> {
        let ([b, a, fb, fa], bar) = self.png(f)?;
        if let (Some(dir), Some(_)) = (&self.files, &f.case) {
            let [pb, pa] = chip_paths(dir.parent().unwrap_or(dir), &f.id);
            write_atomic(&pb, &b).ok()?;
            write_atomic(&pa, &a).ok()?;
        }
        let uri = |png: &[u8]| {
            format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(png)
            )
        };
        Some(([uri(&b), uri(&a), uri(&fb), uri(&fa)], bar))
    }

    /// PNG bytes around a polygon, outline drawn: true colour before and
    /// after, false colour before and after; and the scale bar in metres.
    fn png(&mut self, f: &Detection) -> Option<([Vec<u8>; 4], f64)> {
        let tile = f.tile.clone();
        let m = self.m;
        let entry = self.open.entry(tile.clone()).or_insert_with(|| {
            let t = m.tiles.iter().find(|t| t.id == tile)?;
            let r = TileReader::open(t, &m.sensor).ok()?;
            let tr = Transformer::from_wgs84(&r.grid.wkt).ok()?;
            Some((r, tr))
        });
        let (reader, tr) = entry.as_ref()?;
        let mut g = f.geometry.clone();
        tr.apply_geom(&mut g).ok()?;
        let grid = &reader.grid;
        let bb = g.bounding_rect()?;
        let (c0, r0) = grid.to_pixel(bb.min().x, bb.max().y);
        let (c1, r1) = grid.to_pixel(bb.max().x, bb.min().y);
        let pad = 12.0;
        let cs = (c0.floor() - pad).max(0.0) as usize;
        let rs = (r0.floor() - pad).max(0.0) as usize;
        let ce = ((c1.ceil() + pad) as usize).min(grid.width);
        let re = ((r1.ceil() + pad) as usize).min(grid.height);
        if ce <= cs || re <= rs {
            return None;
        }
        let k = (180 / (ce - cs).max(re - rs)).clamp(1, 12) as u32;
        let blocks = [
            reader.before.read_window(rs..re, cs..ce).ok()?,
            reader.after.read_window(rs..re, cs..ce).ok()?,
        ];
        let chip = |b: &crate::io::raster::Block, v: View| {
            chip_png(b.bands.view(), b.valid.view(), &g, grid, (cs, rs), k, v)
        };
        Some((
            [
                chip(&blocks[0], View::TrueColour)?,
                chip(&blocks[1], View::TrueColour)?,
                chip(&blocks[0], View::FalseColour)?,
                chip(&blocks[1], View::FalseColour)?,
            ],
            scale_bar_m(ce - cs, grid.pixel_size()),
        ))
    }
}

/// A true-colour PNG of a window (`bands` of shape (bands, rows, cols)
/// whose top-left pixel is `origin` (col, row) of `grid`), each pixel drawn
/// `k` × `k`, with the outline of `g` (in the grid's CRS) in yellow.
pub(crate) fn chip_png(
    bands: ndarray::ArrayView3<f32>,
    valid: ndarray::ArrayView2<bool>,
    g: &MultiPolygon<f64>,
    grid: &Grid,
    origin: (usize, usize),
    k: u32,
    view: View,
) -> Option<Vec<u8>> {
    let (_, h, w) = bands.dim();
    let mut img = image::RgbImage::new(w as u32 * k, h as u32 * k);
    // Fixed stretches and gamma 0.8, so chips of different dates and tiles
    // compare directly: true colour 0–0.25 reflectance; false colour
    // (NIR, red, green: vegetation red, water dark, bare and built grey)
    // 0–0.5 for NIR.
    let (bands_rgb, top) = match view {
        View::TrueColour => ([2, 1, 0], [0.25f32, 0.25, 0.25]),
        View::FalseColour => ([3, 2, 1], [0.5, 0.25, 0.25]),
    };
    for r in 0..h {
        for c in 0..w {
            let px = if valid[[r, c]] {
                let v = |i: usize| {
                    ((bands[[bands_rgb[i], r, c]] / top[i])
                        .clamp(0.0, 1.0)
                        .powf(0.8)
                        * 255.0) as u8
                };
                image::Rgb([v(0), v(1), v(2)])
            } else {
                image::Rgb([40, 40, 40])
            };
            for dy in 0..k {
                for dx in 0..k {
                    img.put_pixel(c as u32 * k + dx, r as u32 * k + dy, px);
                }
            }
        }
    }
    let to_img = |x: f64, y: f64| {
        let (c, r) = grid.to_pixel(x, y);
        (
            (c - origin.0 as f64) * k as f64,
            (r - origin.1 as f64) * k as f64,
        )
    };
    for p in &g.0 {
        for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
            for l in ring.lines() {
                let (a, b) = (to_img(l.start.x, l.start.y), to_img(l.end.x, l.end.y));
                let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
                for i in 0..=n {
                    let t = i as f64 / n as f64;
                    let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
                    for (ox, oy) in [(0i64, 0i64), (-1, 0), (0, -1), (-1, -1)] {
                        let (xi, yi) = (x.round() as i64 + ox, y.round() as i64 + oy);
                        if xi >= 0
                            && yi >= 0
                            && (xi as u32) < img.width()
                            && (yi as u32) < img.height()
                        {
                            img.put_pixel(xi as u32, yi as u32, image::Rgb([255, 230, 0]));
                        }
                    }
                }
            }
        }
    }
    scale_bar(
        &mut img,
        scale_bar_m(w, grid.pixel_size()) / grid.pixel_size() * k as f64,
    );
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .ok()?;
    Some(bytes)
}

use image::ImageEncoder as _;

/// How a chip shows the bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Red, green, blue.
    TrueColour,
    /// NIR, red, green.
    FalseColour,
}

/// The length of a chip's scale bar: a round number of metres near a
/// quarter of the chip's width (`width_px` pixels of `pixel_m` metres).
pub(crate) fn scale_bar_m(width_px: usize, pixel_m: f64) -> f64 {
    let quarter = width_px as f64 * pixel_m / 4.0;
    [
        10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
    ]
    .into_iter()
    .rev()
    .find(|&m| m <= quarter)
    .unwrap_or(10.0)
}

/// A white bar with a black edge, `len` image pixels long, bottom left.
fn scale_bar(img: &mut image::RgbImage, len: f64) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (6i64, h - 10);
    let x1 = (x0 + len.round() as i64).min(w - 2);
    for y in y0 - 1..=y0 + 4 {
        for x in x0 - 1..=x1 + 1 {
            if x >= 0 && y >= 0 && x < w && y < h {
                let edge = y == y0 - 1 || y == y0 + 4 || x == x0 - 1 || x == x1 + 1;
                let c = if edge { [0, 0, 0] } else { [255, 255, 255] };
                img.put_pixel(x as u32, y as u32, image::Rgb(c));
            }
        }
    }
}

/// Inline SVG map of the county's polygons over the river centrelines.
fn overview(list: &[&Detection], segments: &[Segment]) -> String {
    let mut bb = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for f in list {
        if let Some(r) = f.geometry.bounding_rect() {
            bb = [
                bb[0].min(r.min().x),
                bb[1].min(r.min().y),
                bb[2].max(r.max().x),
                bb[3].max(r.max().y),
            ];
        }
    }
    if bb[0] > bb[2] {
        return String::new();
    }
    let pad = 0.01;
    let (x0, y0, x1, y1) = (bb[0] - pad, bb[1] - pad, bb[2] + pad, bb[3] + pad);
    let kx = ((y0 + y1) / 2.0).to_radians().cos();
    let (w, h) = (720.0, 720.0 * (y1 - y0) / ((x1 - x0) * kx).max(1e-9));
    let h = h.clamp(200.0, 900.0);
    let sx = |x: f64| (x - x0) / (x1 - x0) * w;
    let sy = |y: f64| (y1 - y) / (y1 - y0) * h;
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"100%\" style=\"max-width:{w:.0}px;border:1px solid #999;background:#f4f6f0\">");
    for seg in segments {
        for ls in &seg.lines.0 {
            if !ls
                .0
                .iter()
                .any(|c| c.x >= x0 && c.x <= x1 && c.y >= y0 && c.y <= y1)
            {
                continue;
            }
            let pts: Vec<String> =
                ls.0.iter()
                    .map(|c| format!("{:.1},{:.1}", sx(c.x), sy(c.y)))
                    .collect();
            let _ = write!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"#2a6fdb\" stroke-width=\"3\"><title>{} {}</title></polyline>", pts.join(" "), esc(&seg.river), esc(&seg.id));
        }
    }
    for (i, f) in list.iter().enumerate() {
        let colour = match f.class {
            ChangeClass::Occupation => "#d62728",
            ChangeClass::SandMining => "#ff7f0e",
            ChangeClass::Dumping => "#8c564b",
            ChangeClass::Construction => "#9467bd",
        };
        for p in &f.geometry.0 {
            let pts: Vec<String> = p
                .exterior()
                .0
                .iter()
                .map(|c| format!("{:.1},{:.1}", sx(c.x), sy(c.y)))
                .collect();
            let _ = write!(s, "<polygon points=\"{}\" fill=\"{colour}\" fill-opacity=\"0.6\" stroke=\"{colour}\"/>", pts.join(" "));
        }
        let (cx, cy) = centroid(f);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#000\">{}</text>",
            sx(cx) + 4.0,
            sy(cy) - 4.0,
            i + 1
        );
    }
    s.push_str("</svg>");
    s
}

fn html(
    (city, county): (&str, &str),
    list: &[&Detection],
    segments: &[Segment],
    reg: &Registry,
    chips: &mut Chips<'_>,
) -> Result<String> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{c} {k} 河湖四乱图斑清单</title><style>\
@page{{size:A4;margin:12mm}}\
body{{font-family:\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"Microsoft YaHei\",\"PingFang SC\",\"WenQuanYi Micro Hei\",\"SimHei\",\"SimSun\",sans-serif;color:#111;width:186mm;margin:0 auto;font-size:10pt;line-height:1.35}}\
h1{{font-size:14pt}} h2{{font-size:12pt;margin:6mm 0 2mm}} h3{{font-size:11pt;margin:2mm 0}}\
table{{border-collapse:collapse;table-layout:fixed;width:186mm}} col.k{{width:30mm}} col.v{{width:63mm}}\
td,th{{border:0.3mm solid #999;padding:1mm 1.5mm;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-all}}\
.item{{break-inside:avoid;page-break-inside:avoid;border-top:0.6mm solid #444;margin-top:4mm;padding-top:2mm}}\
.chips{{width:186mm}} .chips figure{{display:inline-block;width:44mm;margin:1mm 0.8mm 0 0;vertical-align:top}}\
.chips img{{width:44mm;height:44mm;object-fit:contain;image-rendering:pixelated;border:0.3mm solid #666;display:block}}\
.chips figcaption{{font-size:7pt;height:8mm;overflow:hidden}} .scale{{font-size:8pt;margin:1mm 0}} .flag{{color:#b00;font-weight:bold}}\
svg{{width:186mm;height:auto}}\
@media screen{{body{{margin:1.5em auto}}}}</style></head><body>",
        c = esc(city),
        k = esc(county)
    );
    let _ = write!(
        s,
        "<h1>{} · {} — 河湖“四乱”疑似图斑清单 (river encroachment dispatch list)</h1>",
        esc(city),
        esc(county)
    );
    let _ = write!(s, "<p>{} polygon(s). Dates: {} → {}. Chips: true colour, before (left) and after (right), outline in yellow.</p>", list.len(), esc(list.first().map_or("", |f| f.before_date.as_str())), esc(list.first().map_or("", |f| f.after_date.as_str())));
    s.push_str("<h2>Overview 总览</h2>");
    s.push_str(&overview(list, segments));
    s.push_str("<h2>Polygons 图斑</h2>");
    let mut section = None;
    for (i, f) in list.iter().enumerate() {
        if let Some(c) = &f.case {
            if section != Some(c.case_listing) {
                section = Some(c.case_listing);
                let _ = write!(s, "<h2>{}</h2>", c.case_listing.heading());
            }
        }
        let (x, y) = centroid(f);
        let flag = if f.obstructs_flood_channel {
            " <span class=\"flag\">妨碍行洪 obstructs flood channel</span>"
        } else {
            ""
        };
        let (seg, chief) = links(f);
        // The escalation chain by title and region, ids small.
        let chain = chief
            .chain
            .iter()
            .map(|c| match reg.get(c) {
                Some(x) => format!(
                    "{} <small>({}, {})</small>",
                    esc(&x.title),
                    esc(&x.region),
                    esc(c)
                ),
                None => esc(c),
            })
            .collect::<Vec<_>>()
            .join(" → ");
        let _ = write!(
            s,
            "<div class=\"item\"><h3>{n}. {id}</h3><table><colgroup><col class=\"k\"><col class=\"v\"><col class=\"k\"><col class=\"v\"></colgroup>\
<tr><th>Class 类别</th><td>{class} {zh}{flag}</td><th>Area 面积</th><td>{area:.0} m²</td></tr>\
<tr><th>River 河流</th><td>{river}</td><th>Segment 河段</th><td>{seg} ({dist:.0} m from centreline)</td></tr>\
<tr><th>Responsible chief 责任河长</th><td>{title} ({chief})</td><th>Escalation 上报链</th><td>{chain}</td></tr>\
<tr><th>Centroid 中心点</th><td>{x:.6}° E, {y:.6}° N</td><th>Confidence 置信度</th><td>{conf:.2}</td></tr>{case}</table>",
            n = i + 1,
            id = esc(&f.id),
            case = f.case.as_ref().map_or(String::new(), |c| format!(
                "<tr><th>Case 案件编号</th><td><b>{}</b> · {} {}</td><th>Age 已发现</th><td>{} d since {}{}</td></tr>",
                esc(&c.case_id),
                c.case_status.zh(),
                c.case_status.as_str(),
                c.age_days,
                esc(&c.first_seen),
                if c.overdue { " <span class=\"flag\">超期 overdue</span>" } else { "" }
            )),
            class = esc(f.class.as_str()),
            zh = f.class.zh(),
            area = f.area_m2,
            river = esc(&seg.river),
            seg = esc(&seg.segment_id),
            dist = seg.distance_m,
            title = esc(&chief.chief_title),
            chief = esc(&chief.chief_id),
            conf = f.confidence,
        );
        match chips.get(f) {
            Some((uris, bar)) => {
                s.push_str("<div class=\"chips\">");
                let labels = [
                    format!("前 before {} · 真彩色 true colour", f.before_date),
                    format!("后 after {} · 真彩色 true colour", f.after_date),
                    format!(
                        "前 before {} · 假彩色 false colour (NIR R G)",
                        f.before_date
                    ),
                    format!("后 after {} · 假彩色 false colour (NIR R G)", f.after_date),
                ];
                for (u, l) in uris.iter().zip(&labels) {
                    let _ = write!(s, "<figure><img alt=\"{l}\" src=\"{u}\"><figcaption>{l}</figcaption></figure>", l = esc(l));
                }
                let _ = write!(s, "</div><p class=\"scale\">比例尺 scale bar (white, bottom left) = {bar:.0} m; outline in yellow</p>");
            }
            None => s.push_str("<p><em>chips unavailable (tile raster not readable)</em></p>"),
        }
        s.push_str("</div>");
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

const ROLLUP_HEADER: [&str; 8] = [
    "city",
    "county",
    "open",
    "overdue",
    "reported_rectified",
    "rectified",
    "failed_rechecks",
    "false_alarms",
];

fn rollup_row(r: &Rollup) -> [String; 8] {
    [
        r.city.clone(),
        r.county.clone(),
        r.open.to_string(),
        r.overdue.to_string(),
        r.reported.to_string(),
        r.rectified.to_string(),
        r.failed_rechecks.to_string(),
        r.false_alarms.to_string(),
    ]
}

/// The supervision list (督办单) as CSV: one row per county and one
/// `(all)` row per city.
fn supervision_csv(rows: &[Rollup]) -> std::result::Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::from("\u{feff}".as_bytes()));
    w.write_record(ROLLUP_HEADER)?;
    for r in rows {
        w.write_record(rollup_row(r))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The supervision list as a printable page.
fn supervision_html(rows: &[Rollup]) -> String {
    let mut s = String::from("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>河湖“四乱”问题督办单 supervision list</title><style>body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse} td,th{border:1px solid #bbb;padding:3px 8px;text-align:right} td:first-child,td:nth-child(2){text-align:left} tr.city{font-weight:bold;background:#eee}</style></head><body><h1>河湖“四乱”问题督办单 — supervision list by city and county</h1><table><tr>");
    for h in ROLLUP_HEADER {
        let _ = write!(s, "<th>{h}</th>");
    }
    s.push_str("</tr>");
    for r in rows {
        let class = if r.county == "(all)" {
            " class=\"city\""
        } else {
            ""
        };
        let _ = write!(s, "<tr{class}>");
        for v in rollup_row(r) {
            let _ = write!(s, "<td>{}</td>", esc(&v));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting_and_starts_with_a_bom() {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(["a,b", "c\"d", "松花江"]).unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out, "\"a,b\",\"c\"\"d\",松花江\r\n");
        assert_eq!(json_num(19700.0), "19700.0");
        assert_eq!(json_num(0.95), "0.95");
    }
}
