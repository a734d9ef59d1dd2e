//! A campaign's file and its rules: the CSV read as a stream, every row
//! checked as a payout, the file-wide rules (repeats, the budget).

use std::io::Read;

use hongbao_wxpay::{Fen, InvalidField};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::MerchantConfig;
use crate::model::{
    CampaignOptions, Checked, Kind, Rail, RedpackInput, TransferInput, Valid, ValidRedpack,
    ValidTransfer,
};

/// How many bad rows the API lists and the command line prints; the rest
/// are counted (and `campaign run --errors FILE` writes them all).
pub const ROW_ERRORS_SHOWN: usize = 1_000;

/// A problem with a row (or, at line 1, with the header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The line in the file (1 is the header).
    pub line: u64,
    /// The column at fault, if one is.
    pub field: Option<String>,
    /// In English.
    pub message: String,
    /// In Chinese.
    pub zh_message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: {field} {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

fn row_error(
    line: u64,
    field: Option<&str>,
    message: impl Into<String>,
    zh: impl Into<String>,
) -> RowError {
    RowError {
        line,
        field: field.map(str::to_owned),
        message: message.into(),
        zh_message: zh.into(),
    }
}

/// Updates a SHA-256 with every byte read.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Yuan,
    Fen,
}

#[derive(Debug)]
struct Columns {
    openid: usize,
    amount: Option<(usize, Unit)>,
    wishing: Option<usize>,
    act_name: Option<usize>,
    remark: Option<usize>,
    scene_id: Option<usize>,
}

const COLUMNS: [&str; 7] = [
    "openid",
    "amount",
    "total_amount",
    "wishing",
    "act_name",
    "remark",
    "scene_id",
];

impl Columns {
    fn parse(header: &csv::StringRecord, options: &CampaignOptions) -> Result<Columns, RowError> {
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let n = if i == 0 {
                    n.trim_start_matches('\u{feff}')
                } else {
                    n
                };
                n.trim().to_ascii_lowercase()
            })
            .collect();
        let find = |name: &str| names.iter().position(|n| n == name);
        if let Some(unknown) = names.iter().find(|n| !COLUMNS.contains(&n.as_str())) {
            return Err(row_error(
                1,
                Some(unknown),
                format!("is not a column; the columns are {}", COLUMNS.join(", ")),
                format!("不是有效的列；可用的列为 {}", COLUMNS.join(", ")),
            ));
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(row_error(
                    1,
                    Some(name),
                    "appears twice in the header",
                    "在表头中出现了两次",
                ));
            }
        }
        let openid = find("openid").ok_or_else(|| {
            row_error(
                1,
                None,
                "the header needs an openid column (e.g. openid,amount)",
                "表头需要 openid 列（例如 openid,amount）",
            )
        })?;
        let amount = match (find("amount"), find("total_amount")) {
            (Some(_), Some(_)) => {
                return Err(row_error(
                    1,
                    None,
                    "give the amount once: amount (yuan) or total_amount (fen), not both",
                    "金额列只能有一个：amount（元）或 total_amount（分）",
                ));
            }
            (Some(i), None) => Some((i, Unit::Yuan)),
            (None, Some(i)) => Some((i, Unit::Fen)),
            (None, None) if options.amount.is_some() => None,
            (None, None) => {
                return Err(row_error(
                    1,
                    None,
                    "the header has no amount (yuan) or total_amount (fen) column, and no default amount was given (--amount)",
                    "表头没有 amount（元）或 total_amount（分）列，也没有指定默认金额（--amount）",
                ));
            }
        };
        Ok(Columns {
            openid,
            amount,
            wishing: find("wishing"),
            act_name: find("act_name"),
            remark: find("remark"),
            scene_id: find("scene_id"),
        })
    }

    fn amount_name(&self) -> &'static str {
        match self.amount {
            Some((_, Unit::Yuan)) => "amount",
            Some((_, Unit::Fen)) => "total_amount",
            None => "--amount",
        }
    }
}

/// One row: its position, its line, and the payout or what is wrong with it.
#[derive(Debug)]
pub struct Row {
    /// 1 for the first row after the header.
    pub index: u64,
    /// Its line in the file.
    pub line: u64,
    /// The payout, or the problem.
    pub result: Result<Valid, RowError>,
}

/// Reads a campaign's file row by row.
pub struct CampaignReader<R: Read> {
    csv: csv::Reader<Hashing<R>>,
    columns: Columns,
    options: CampaignOptions,
    merchant: MerchantConfig,
    record: csv::StringRecord,
    index: u64,
}

impl<R: Read> std::fmt::Debug for CampaignReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignReader")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

fn csv_error(e: &csv::Error, line: u64) -> RowError {
    let line = e.position().map_or(line, |p| p.line());
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => row_error(
            line,
            None,
            "is not UTF-8: save the file as CSV UTF-8",
            "不是 UTF-8 编码：请将文件另存为 CSV UTF-8 格式",
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => row_error(
            line,
            None,
            format!("has {len} fields, the header has {expected_len}"),
            format!("有 {len} 个字段，表头有 {expected_len} 个"),
        ),
        _ => row_error(
            line,
            None,
            format!("cannot be read: {e}"),
            format!("无法读取：{e}"),
        ),
    }
}

impl<R: Read> CampaignReader<R> {
    /// Reads the header.
    pub fn new(
        reader: R,
        options: &CampaignOptions,
        merchant: &MerchantConfig,
    ) -> Result<Self, RowError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(Hashing {
                inner: reader,
                hasher: Sha256::new(),
            });
        let header = csv.headers().map_err(|e| csv_error(&e, 1))?.clone();
        if header.is_empty() || header.iter().all(|h| h.trim().is_empty()) {
            return Err(row_error(
                1,
                None,
                "the file is empty: it needs a header such as openid,amount",
                "文件为空：需要表头，例如 openid,amount",
            ));
        }
        let columns = Columns::parse(&header, options)?;
        Ok(CampaignReader {
            csv,
            columns,
            options: options.clone(),
            merchant: merchant.clone(),
            record: csv::StringRecord::new(),
            index: 0,
        })
    }

    /// The next row, or `None` at the end. A row that cannot be read at all
    /// comes back as an error for its line.
    pub fn next_row(&mut self) -> Option<Row> {
        loop {
            let line = self.csv.position().line();
            match self.csv.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    if self.record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    self.index += 1;
                    let line = self.record.position().map_or(line, |p| p.line());
                    return Some(Row {
                        index: self.index,
                        line,
                        result: self.payout(line),
                    });
                }
                Err(e) => {
                    self.index += 1;
                    // A short row is still a row: count it and go on.
                    return Some(Row {
                        index: self.index,
                        line,
                        result: Err(csv_error(&e, line)),
                    });
                }
            }
        }
    }

    fn payout(&self, line: u64) -> Result<Valid, RowError> {
        let get = |i: Option<usize>| {
            i.and_then(|i| self.record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let openid = get(Some(self.columns.openid))
            .ok_or_else(|| row_error(line, Some("openid"), "is empty", "为空"))?;
        let amount = match self.columns.amount {
            Some((i, unit)) => match get(Some(i)) {
                None => self.options.amount.ok_or_else(|| {
                    row_error(
                        line,
                        Some(self.columns.amount_name()),
                        "is empty and no default amount was given",
                        "为空，且没有默认金额",
                    )
                })?,
                Some(text) => match unit {
                    Unit::Yuan => Fen::parse_yuan(text)
                        .map_err(|e| row_error(line, Some("amount"), e.message, e.zh_message))?,
                    Unit::Fen => text.parse::<u64>().map(Fen::new).map_err(|_| {
                        row_error(
                            line,
                            Some("total_amount"),
                            format!("{text:?} is not a whole number of fen"),
                            format!("{text:?} 不是以分为单位的整数"),
                        )
                    })?,
                },
            },
            None => self.options.amount.expect("checked with the header"),
        };
        let text = |i: Option<usize>, default: &Option<String>| {
            get(i).map(str::to_owned).or_else(|| default.clone())
        };
        if self.options.rail == Rail::Transfer {
            if let Some(scene) = text(self.columns.scene_id, &self.options.scene_id) {
                return Err(row_error(
                    line,
                    Some("scene_id"),
                    format!(
                        "{scene:?} is a red packet's scene; a transfer's is the merchant's transfer_scene_id"
                    ),
                    format!("{scene:?} 是红包场景；转账场景为商户的 transfer_scene_id"),
                ));
            }
            let input = TransferInput {
                merchant: Some(self.options.merchant.clone()),
                openid: openid.to_owned(),
                transfer_amount: amount.get(),
                transfer_remark: text(self.columns.remark, &self.options.remark),
                activity_name: text(self.columns.act_name, &self.options.act_name),
                reward_description: text(self.columns.wishing, &self.options.wishing),
                user_recv_perception: None,
                user_name: None,
            };
            return ValidTransfer::validate(&input, &self.merchant, None)
                .map(Valid::from)
                .map_err(|e| self.named(line, e));
        }
        let input = RedpackInput {
            kind: Kind::Normal,
            merchant: Some(self.options.merchant.clone()),
            re_openid: openid.to_owned(),
            total_amount: amount.get(),
            total_num: None,
            send_name: self.options.send_name.clone(),
            wishing: text(self.columns.wishing, &self.options.wishing),
            act_name: text(self.columns.act_name, &self.options.act_name),
            remark: text(self.columns.remark, &self.options.remark),
            scene_id: text(self.columns.scene_id, &self.options.scene_id),
            risk_info: None,
        };
        ValidRedpack::validate(&input, &self.merchant)
            .map(Valid::from)
            .map_err(|e| self.named(line, e))
    }

    /// Names a rule's field as the file names it.
    fn named(&self, line: u64, e: InvalidField) -> RowError {
        let field = match &*e.field {
            "re_openid" => "openid",
            "total_amount" | "transfer_amount" => self.columns.amount_name(),
            "transfer_remark" => "remark",
            "activity_name" => "act_name",
            "reward_description" => "wishing",
            "send_name" => "--send-name",
            other => other,
        };
        row_error(line, Some(field), e.message, e.zh_message)
    }

    /// Reads to the end and returns the file's SHA-256 (hex).
    pub fn finish(mut self) -> String {
        while self.next_row().is_some() {}
        let Hashing {
            mut inner,
            mut hasher,
        } = self.csv.into_inner();
        // Bytes after the last record (if any) belong to the file too.
        let mut rest = Vec::new();
        let _ = inner.read_to_end(&mut rest);
        hasher.update(&rest);
        hex::encode(hasher.finalize())
    }
}

/// An openid (28 characters of `A–Z a–z 0–9 - _`, 6 bits each) packed
/// into 21 bytes, followed by its line: 25 bytes a row, so that a million
/// rows are checked for duplicates in 25 MB.
fn packed(openid: &str, line: u64) -> [u8; 25] {
    let mut out = [0u8; 25];
    let mut bits: u32 = 0;
    let mut value: u32 = 0;
    let mut at = 0;
    for b in openid.bytes() {
        let symbol = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        value = (value << 6) | u32::from(symbol);
        bits += 6;
        while bits >= 8 {
            bits -= 8;
            out[at] = u8::try_from((value >> bits) & 0xff).unwrap_or(0);
            at += 1;
        }
    }
    let line = u32::try_from(line).unwrap_or(u32::MAX);
    out[21..].copy_from_slice(&line.to_be_bytes());
    out
}

/// Validates every row of a file (streamed), reporting each problem to
/// `report` as it is found (repeated openids at the end, in line order);
/// the file is usable only if `errors` is 0.
pub fn validate<R: Read>(
    reader: R,
    options: &CampaignOptions,
    merchant: &MerchantConfig,
    mut report: impl FnMut(&RowError),
) -> Result<Checked, RowError> {
    let mut rows = CampaignReader::new(reader, options, merchant)?;
    let mut seen: Vec<[u8; 25]> = Vec::new();
    let mut total = Fen::ZERO;
    let (mut count, mut errors) = (0u64, 0u64);
    let mut over_budget = false;
    while let Some(row) = rows.next_row() {
        count += 1;
        let payout = match row.result {
            Ok(payout) => payout,
            Err(e) => {
                errors += 1;
                report(&e);
                continue;
            }
        };
        if !options.allow_repeat {
            seen.push(packed(payout.openid().as_str(), row.line));
        }
        total = match total.checked_add(payout.amount()) {
            Some(t) => t,
            None => {
                errors += 1;
                report(&row_error(
                    row.line,
                    None,
                    "the total is too large",
                    "总金额过大",
                ));
                continue;
            }
        };
        if let Some(budget) = options.budget
            && total > budget
            && !over_budget
        {
            over_budget = true;
            errors += 1;
            report(&row_error(
                row.line,
                None,
                format!(
                    "the total reaches {total} yuan on this line, over the budget of {budget} yuan (--budget)"
                ),
                format!("总金额在此行达到 {total} 元，超过预算 {budget} 元（--budget）"),
            ));
        }
    }
    let sha256 = rows.finish();
    // Sorted by openid, then line: a repeat follows its first occurrence.
    seen.sort_unstable();
    let mut repeats = Vec::new();
    for pair in seen.windows(2) {
        if pair[0][..21] == pair[1][..21] {
            repeats.push(pair[1]);
        }
    }
    let first_line = |key: &[u8; 25]| {
        let at = seen.partition_point(|k| k[..21] < key[..21]);
        u32::from_be_bytes([seen[at][21], seen[at][22], seen[at][23], seen[at][24]])
    };
    let mut repeat_errors: Vec<(u32, u32)> = repeats
        .iter()
        .map(|k| {
            (
                u32::from_be_bytes([k[21], k[22], k[23], k[24]]),
                first_line(k),
            )
        })
        .collect();
    repeat_errors.sort_unstable();
    for (line, first) in repeat_errors {
        errors += 1;
        report(&row_error(
            u64::from(line),
            Some("openid"),
            format!("repeats the openid of line {first}; use --allow-repeat to pay it twice"),
            format!("与第 {first} 行的 openid 重复；如需重复发放请使用 --allow-repeat"),
        ));
    }
    Ok(Checked {
        rows: count,
        total,
        sha256,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant() -> MerchantConfig {
        crate::config::example_merchant()
    }

    fn options() -> CampaignOptions {
        CampaignOptions {
            merchant: "main".into(),
            ..CampaignOptions::default()
        }
    }

    fn check(text: &str, options: &CampaignOptions) -> (Result<Checked, RowError>, Vec<RowError>) {
        let mut errors = Vec::new();
        let result = validate(text.as_bytes(), options, &merchant(), |e| {
            errors.push(e.clone())
        });
        (result, errors)
    }

    const A: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
    const B: &str = "oxTWIuGaIt6gTKsQRLau2M0yL16E";

    #[test]
    fn a_good_file_in_yuan_or_fen_is_totalled() {
        let (checked, errors) = check(&format!("openid,amount\n{A},1.88\n{B},2\n"), &options());
        let checked = checked.unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((checked.rows, checked.total), (2, Fen::new(388)));
        assert_eq!(checked.sha256.len(), 64);
        let (fen, _) = check(
            &format!("\u{feff}openid,total_amount,wishing\n{A},188,新年快乐\n"),
            &options(),
        );
        assert_eq!(fen.unwrap().total, Fen::new(188));
        let with_default = CampaignOptions {
            amount: Some(Fen::new(100)),
            ..options()
        };
        let (only_openids, errors) = check(&format!("openid\n{A}\n{B}\n"), &with_default);
        assert!(errors.is_empty());
        assert_eq!(only_openids.unwrap().total, Fen::new(200));
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let text = format!(
            "openid,amount,wishing,scene_id\n\
             {A},1.88,,\n\
             short,1.00,,\n\
             {B},1.888,,\n\
             oAAAAAAAAAAAAAAAAAAAAAAAAAAA,0.50,,\n\
             oBBBBBBBBBBBBBBBBBBBBBBBBBBB,1.00,{},\n\
             {A},1.00,,\n\
             oCCCCCCCCCCCCCCCCCCCCCCCCCCC,1.00\n\
             oDDDDDDDDDDDDDDDDDDDDDDDDDDD,300.00,,PRODUCT_9\n\
             ,1.00,,\n",
            "福".repeat(43)
        );
        let (checked, errors) = check(&text, &options());
        let got: Vec<(u64, Option<&str>)> = errors
            .iter()
            .map(|e| (e.line, e.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (3, Some("openid")),
                (4, Some("amount")),
                (5, Some("amount")),
                (6, Some("wishing")),
                (8, None),
                (9, Some("scene_id")),
                (10, Some("openid")),
                (7, Some("openid")),
            ],
            "{errors:#?}"
        );
        assert!(
            errors[7].message.contains("openid of line 2"),
            "{}",
            errors[7].message
        );
        assert_eq!(errors[4].message, "has 2 fields, the header has 4");
        assert_eq!(checked.unwrap().errors, 8);
        let repeat = CampaignOptions {
            allow_repeat: true,
            ..options()
        };
        let (_, errors) = check(&format!("openid,amount\n{A},1.00\n{A},1.00\n"), &repeat);
        assert!(errors.is_empty());
    }

    #[test]
    fn packed_openids_keep_every_difference() {
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut keys = std::collections::BTreeSet::new();
        for (i, c) in alphabet.chars().enumerate() {
            for position in [0, 13, 27] {
                let mut openid: Vec<char> = "oAAAAAAAAAAAAAAAAAAAAAAAAAAA".chars().collect();
                openid[position] = c;
                let openid: String = openid.into_iter().collect();
                keys.insert((packed(&openid, 7)[..21].to_vec(), openid, i));
            }
        }
        let distinct: std::collections::BTreeSet<&Vec<u8>> =
            keys.iter().map(|(k, _, _)| k).collect();
        let openids: std::collections::BTreeSet<&String> = keys.iter().map(|(_, o, _)| o).collect();
        assert_eq!(distinct.len(), openids.len());
        assert_eq!(packed(A, 300)[21..], 300u32.to_be_bytes());
    }

    #[test]
    fn repeats_are_found_wherever_they_are() {
        let text = format!("openid,amount\n{A},1.00\n{B},1.00\n{A},1.00\n{B},1.00\n{A},1.00\n");
        let (checked, errors) = check(&text, &options());
        let got: Vec<(u64, String)> = errors.iter().map(|e| (e.line, e.message.clone())).collect();
        assert_eq!(
            got,
            [
                (
                    4,
                    "repeats the openid of line 2; use --allow-repeat to pay it twice".to_owned()
                ),
                (
                    5,
                    "repeats the openid of line 3; use --allow-repeat to pay it twice".to_owned()
                ),
                (
                    6,
                    "repeats the openid of line 2; use --allow-repeat to pay it twice".to_owned()
                ),
            ]
        );
        assert_eq!(checked.unwrap().errors, 3);
    }

    #[test]
    fn the_budget_is_reported_once_where_it_is_crossed() {
        let budget = CampaignOptions {
            budget: Some(Fen::new(300)),
            ..options()
        };
        let (checked, errors) = check(
            &format!("openid,amount\n{A},2.00\n{B},2.00\noEEEEEEEEEEEEEEEEEEEEEEEEEEE,2.00\n"),
            &budget,
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(
            errors[0].message.contains("budget"),
            "{}",
            errors[0].message
        );
        assert_eq!(checked.unwrap().total, Fen::new(600));
    }

    #[test]
    fn header_problems_are_line_one() {
        for (text, needle) in [
            ("openid,amount,colour\n", "colour"),
            ("name,amount\n", "openid"),
            ("openid,amount,total_amount\n", "not both"),
            ("openid\n", "--amount"),
            ("openid,amount,amount\n", "twice"),
            ("", "empty"),
        ] {
            let (result, _) = check(text, &options());
            let e = result.unwrap_err();
            assert_eq!(e.line, 1, "{text:?}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn non_utf8_is_named() {
        let mut bytes = format!("openid,amount\n{A},1.00\n").into_bytes();
        bytes.extend_from_slice(b"o\xff\xfe,1.00\n");
        let mut errors = Vec::new();
        let checked = validate(bytes.as_slice(), &options(), &merchant(), |e| {
            errors.push(e.clone())
        })
        .unwrap();
        assert_eq!(checked.errors, 1);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].message.contains("UTF-8"));
    }
}
