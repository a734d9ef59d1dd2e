//! `hongbao sign`: shows exactly what WeChat signs, and checks a body's sign.

use std::io::Read;
use std::path::PathBuf;

use hongbao_wxpay::{Api, ApiKey, Params, SignType, sign, xml};

use super::Error;
use crate::Outcome;

/// Print the string WeChat signs and its signature.
///
/// Give the request's parameters as `name=value` (values raw, not
/// URL-encoded), or a whole request body with `--xml`. The key is masked in
/// the output.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  hongbao sign --key $KEY mch_id=1900000109 nonce_str=abc total_amount=100\n  hongbao sign --key-env WXPAY_API_KEY --xml request.xml --api sendredpack"
)]
pub(crate) struct Args {
    /// The merchant's v2 API key (API密钥). Prefer --key-env or --key-file: a key on the command line stays in the shell history.
    #[arg(long, value_name = "KEY", conflicts_with_all = ["key_env", "key_file"])]
    key: Option<String>,
    /// Read the key from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "key_file")]
    key_env: Option<String>,
    /// Read the key from this file.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The signature type.
    #[arg(long, value_name = "TYPE", default_value = "MD5", value_parser = ["MD5", "HMAC-SHA256"])]
    sign_type: String,
    /// Read the parameters from a request body (`-` for standard input) and check its `<sign>`.
    #[arg(long, value_name = "FILE")]
    xml: Option<PathBuf>,
    /// The API the parameters are for: warns about fields WeChat would not sign.
    #[arg(long, value_name = "API")]
    api: Option<String>,
    /// Parameters as name=value.
    #[arg(value_name = "NAME=VALUE")]
    params: Vec<String>,
}

fn read_key(args: &Args) -> Result<String, Error> {
    if let Some(key) = &args.key {
        return Ok(key.clone());
    }
    if let Some(var) = &args.key_env {
        return std::env::var(var)
            .map_err(|_| Error::Usage(format!("the environment variable {var} is not set")));
    }
    if let Some(path) = &args.key_file {
        return std::fs::read_to_string(path)
            .map(|k| k.trim().to_owned())
            .map_err(|e| Error::Usage(format!("cannot read --key-file {}: {e}", path.display())));
    }
    Err(Error::Usage(
        "give the API key with --key, --key-env or --key-file".into(),
    ))
}

fn read_params(args: &Args) -> Result<(Params, Option<String>), Error> {
    let mut params = Params::new();
    let mut given_sign = None;
    if let Some(path) = &args.xml {
        let mut body = Vec::new();
        let read = if path.as_os_str() == "-" {
            std::io::stdin().read_to_end(&mut body)
        } else {
            std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut body))
        };
        read.map_err(|e| Error::Usage(format!("cannot read --xml {}: {e}", path.display())))?;
        let doc = xml::parse(&body)
            .map_err(|e| Error::Usage(format!("--xml {}: {e}", path.display())))?;
        given_sign = doc.get("sign").map(str::to_owned);
        params = doc.to_params();
        params.remove("sign");
    }
    for pair in &args.params {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(Error::Usage(format!("{pair:?} is not name=value")));
        };
        if name.is_empty() {
            return Err(Error::Usage(format!("{pair:?} has no name before '='")));
        }
        if name == "sign" {
            given_sign = Some(value.to_owned());
        } else {
            params.insert(name.to_owned(), value);
        }
    }
    if params.is_empty() {
        return Err(Error::Usage(
            "no parameters: give name=value pairs or --xml FILE".into(),
        ));
    }
    Ok((params, given_sign))
}

/// Things that often lead to SIGN_ERROR, found in the parameters.
fn warnings(
    args: &Args,
    params: &Params,
    key: &str,
    sign_type: SignType,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    if key.chars().count() != 32 {
        out.push(format!(
            "the key has {} characters; a v2 API key (API密钥) has 32",
            key.chars().count()
        ));
    }
    for (name, value) in params.iter() {
        if value.trim() != value {
            out.push(format!(
                "{name} has leading or trailing whitespace, which is signed as is"
            ));
        }
        if matches!(name, "total_amount" | "amount" | "total_num")
            && !value.bytes().all(|b| b.is_ascii_digit())
        {
            out.push(format!(
                "{name}={value}: amounts are whole numbers of fen (1.00 yuan is 100)"
            ));
        }
    }
    match (sign_type, params.get("sign_type")) {
        (SignType::HmacSha256, None) => out.push(
            "HMAC-SHA256 signatures must include sign_type=HMAC-SHA256 among the signed parameters".into(),
        ),
        (_, Some(_)) if args.api.is_some() => {}
        (SignType::Md5, Some(_)) => out.push(
            "sign_type is not a documented field of the red packet APIs; WeChat leaves it out of its signature".into(),
        ),
        _ => {}
    }
    if let Some(name) = &args.api {
        let api = Api::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Api::ALL.iter().map(|a| a.name()).collect();
                Error::Usage(format!("--api {name:?} is not one of {}", names.join(", ")))
            })?;
        for field in params.names() {
            if !api.fields().contains(&field) {
                out.push(format!(
                    "{field} is not a documented field of {api}: WeChat signs only its documented fields, so this gives SIGN_ERROR"
                ));
            }
        }
    }
    Ok(out)
}

pub(crate) fn run(args: &Args) -> super::Result {
    let key = read_key(args)?;
    let sign_type: SignType = args
        .sign_type
        .parse()
        .map_err(|e: hongbao_wxpay::InvalidField| Error::Usage(e.to_string()))?;
    let (params, given_sign) = read_params(args)?;
    // Every argument is checked (--api too) before anything is printed.
    let warnings = warnings(args, &params, &key, sign_type)?;
    let signature = sign(&params, &ApiKey::any(&key), sign_type);

    out!("string to sign:");
    out!(
        "{}&key={}",
        hongbao_wxpay::sign::string_to_sign(params.iter()),
        "*".repeat(key.chars().count())
    );
    out!("sign ({sign_type}): {signature}");
    for warning in warnings {
        out!("warning: {warning}");
    }
    match given_sign {
        None => Ok(Outcome::Done),
        Some(given) if given.eq_ignore_ascii_case(&signature) => {
            out!("the given sign matches");
            Ok(Outcome::Done)
        }
        Some(given) => {
            out!(
                "the given sign {given} does NOT match: WeChat would answer SIGN_ERROR. Check the key \
                 (the v2 API key, not the APIv3 key or the AppSecret) and the warnings above"
            );
            Ok(Outcome::Failed)
        }
    }
}
