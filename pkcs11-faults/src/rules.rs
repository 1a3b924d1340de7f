//! The rule language: parsing a configuration and deciding, call by call,
//! what happens to it.
//!
//! A [`Config`] holds the parsed rules with their call counters (atomics,
//! per process; a new `Config`, e.g. after the configuration file changed,
//! starts from zero) and the vendor behaviour switches. [`Config::plan`] is
//! called once per PKCS#11 call and returns the [`Plan`] for it. The syntax
//! is described in the crate documentation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use cryptoki_sys::CK_RV;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::rv;

/// Every function of the PKCS#11 2.40 function list, in list order.
pub const FUNCTIONS: [&str; 68] = [
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetFunctionList",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_Login",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptInit",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_DigestInit",
    "C_Digest",
    "C_DigestUpdate",
    "C_DigestKey",
    "C_DigestFinal",
    "C_SignInit",
    "C_Sign",
    "C_SignUpdate",
    "C_SignFinal",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyInit",
    "C_Verify",
    "C_VerifyUpdate",
    "C_VerifyFinal",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_SeedRandom",
    "C_GenerateRandom",
    "C_GetFunctionStatus",
    "C_CancelFunction",
    "C_WaitForSlotEvent",
];

/// A configuration that could not be parsed: which item, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The offending item, as written.
    pub item: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad fault rule `{}`: {}", self.item, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Which functions a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Functions {
    /// `*`: every function.
    All,
    /// `C_A|C_B`: these functions (names with their `C_` prefix).
    Some(Vec<&'static str>),
}

/// Which of the matching calls a rule fires on (calls counted from 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// No trigger: every call.
    Always,
    /// `@N`: the Nth call only.
    Nth(u64),
    /// `%N`: calls N, 2N, 3N, ...
    Every(u64),
    /// `>N`: every call after the first N.
    After(u64),
    /// `~P/SEED`: each call with probability P, from a generator seeded with SEED.
    Rate(f64, u64),
}

/// What a rule does to a call it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return this code without calling the real module.
    Fail(CK_RV),
    /// Call the real `C_Logout` on the call's session, then forward the call.
    Logout,
    /// Sleep this long before the call.
    Latency(Duration),
}

/// Vendor behaviour switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vendor {
    /// `vendor=gcm-iv-after-tag`: AES-GCM encryption ignores the caller's IV,
    /// draws one from the token and returns ciphertext || tag || IV.
    pub gcm_iv_after_tag: bool,
    /// `vendor=no-gcm`: `CKM_AES_GCM` is hidden and refused.
    pub no_gcm: bool,
    /// `vendor=gcm-iv-generated`: AES-GCM encryption draws the IV from the
    /// token and writes it into the caller's IV buffer, which it uses.
    pub gcm_iv_generated: bool,
}

impl Vendor {
    /// Both sets of switches together.
    pub fn union(self, other: Vendor) -> Vendor {
        Vendor {
            gcm_iv_after_tag: self.gcm_iv_after_tag || other.gcm_iv_after_tag,
            no_gcm: self.no_gcm || other.no_gcm,
            gcm_iv_generated: self.gcm_iv_generated || other.gcm_iv_generated,
        }
    }
}

/// One rule with its call counter.
#[derive(Debug)]
pub struct Rule {
    /// Functions it applies to.
    pub functions: Functions,
    /// Calls it fires on.
    pub trigger: Trigger,
    /// What it does.
    pub action: Action,
    calls: AtomicU64,
    rng: Option<Mutex<ChaCha8Rng>>,
}

impl Rule {
    fn new(functions: Functions, trigger: Trigger, action: Action) -> Rule {
        let rng = match trigger {
            Trigger::Rate(_, seed) => Some(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
            _ => None,
        };
        Rule { functions, trigger, action, calls: AtomicU64::new(0), rng }
    }

    fn applies_to(&self, function: &str) -> bool {
        match &self.functions {
            Functions::All => true,
            Functions::Some(names) => names.contains(&function),
        }
    }

    /// Counts a call of `function` if the rule applies to it; true when the rule fires.
    fn fires(&self, function: &str) -> bool {
        if !self.applies_to(function) {
            return false;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self.trigger {
            Trigger::Always => true,
            Trigger::Nth(k) => n == k,
            Trigger::Every(k) => n % k == 0,
            Trigger::After(k) => n > k,
            Trigger::Rate(p, _) => {
                let draw = match &self.rng {
                    Some(rng) => rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64(),
                    None => return false,
                };
                // A uniform draw in [0, 1) against the probability.
                ((draw >> 11) as f64 / (1u64 << 53) as f64) < p
            }
        }
    }
}

/// What to do with one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sleep this long first (the sum of the latency rules that fired).
    pub latency: Duration,
    /// Log the session's user out before forwarding.
    pub logout: bool,
    /// Return this code instead of forwarding (the first failure rule that fired).
    pub fail: Option<CK_RV>,
}

impl Plan {
    /// Adds another plan's actions after this one's.
    pub fn merge(self, other: Plan) -> Plan {
        Plan {
            latency: self.latency + other.latency,
            logout: self.logout || other.logout,
            fail: self.fail.or(other.fail),
        }
    }
}

/// A parsed configuration.
#[derive(Debug, Default)]
pub struct Config {
    /// The rules, in the order written.
    pub rules: Vec<Rule>,
    /// The vendor switches.
    pub vendor: Vendor,
}

impl Config {
    /// Parses a configuration: items separated by `;` or new lines, `#`
    /// starting a comment to the end of the line.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let mut config = Config::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for item in line.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                config.add(item)?;
            }
        }
        Ok(config)
    }

    /// True when the configuration does nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.vendor == Vendor::default()
    }

    /// Counts one call of `function` in every rule that applies to it and
    /// returns what the rules that fired ask for. Every applicable rule
    /// counts the call, whether or not an earlier rule fired.
    pub fn plan(&self, function: &str) -> Plan {
        let mut plan = Plan::default();
        for rule in &self.rules {
            if !rule.fires(function) {
                continue;
            }
            match rule.action {
                Action::Fail(rv) => plan.fail = plan.fail.or(Some(rv)),
                Action::Logout => plan.logout = true,
                Action::Latency(d) => plan.latency += d,
            }
        }
        plan
    }

    fn add(&mut self, item: &str) -> Result<(), ParseError> {
        let bad = |reason: &str| ParseError { item: item.to_string(), reason: reason.to_string() };
        let (lhs, rhs) =
            item.split_once('=').ok_or_else(|| bad("expected `FUNCTIONS[TRIGGER]=ACTION` or `vendor=NAME`"))?;
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        if lhs.eq_ignore_ascii_case("vendor") {
            match rhs {
                "gcm-iv-after-tag" => self.vendor.gcm_iv_after_tag = true,
                "no-gcm" => self.vendor.no_gcm = true,
                "gcm-iv-generated" => self.vendor.gcm_iv_generated = true,
                _ => return Err(bad("unknown vendor behaviour (known: gcm-iv-after-tag, gcm-iv-generated, no-gcm)")),
            }
            return Ok(());
        }
        let split = lhs.find(['@', '%', '>', '~']).unwrap_or(lhs.len());
        let functions = parse_functions(lhs[..split].trim()).map_err(|r| bad(&r))?;
        let trigger = parse_trigger(lhs[split..].trim()).map_err(|r| bad(&r))?;
        let action = parse_action(rhs).map_err(|r| bad(&r))?;
        self.rules.push(Rule::new(functions, trigger, action));
        Ok(())
    }
}

fn parse_functions(text: &str) -> Result<Functions, String> {
    if text == "*" {
        return Ok(Functions::All);
    }
    if text.is_empty() {
        return Err("no function named (use `*` for all)".into());
    }
    let mut names = Vec::new();
    for name in text.split('|').map(str::trim) {
        let full = if name.starts_with("C_") { name.to_string() } else { format!("C_{name}") };
        let known = FUNCTIONS.iter().find(|f| **f == full).ok_or_else(|| format!("unknown function `{name}`"))?;
        names.push(*known);
    }
    Ok(Functions::Some(names))
}

fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("a call count starts at 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a call count")),
    }
}

fn parse_trigger(text: &str) -> Result<Trigger, String> {
    let Some(kind) = text.chars().next() else {
        return Ok(Trigger::Always);
    };
    let rest = &text[1..];
    match kind {
        '@' => Ok(Trigger::Nth(parse_count(rest)?)),
        '%' => Ok(Trigger::Every(parse_count(rest)?)),
        '>' => match rest.trim().parse::<u64>() {
            Ok(n) => Ok(Trigger::After(n)),
            Err(_) => Err(format!("`{rest}` is not a call count")),
        },
        '~' => {
            let (p, seed) = rest.split_once('/').unwrap_or((rest, "0"));
            let p: f64 = p.trim().parse().map_err(|_| format!("`{p}` is not a probability"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("probability {p} is not between 0 and 1"));
            }
            let seed: u64 = seed.trim().parse().map_err(|_| format!("`{seed}` is not a seed"))?;
            Ok(Trigger::Rate(p, seed))
        }
        _ => Err(format!("unknown trigger `{text}`")),
    }
}

fn parse_action(text: &str) -> Result<Action, String> {
    if text.eq_ignore_ascii_case("logout") {
        return Ok(Action::Logout);
    }
    if let Some(amount) = text.strip_prefix("latency:") {
        return parse_latency(amount.trim()).map(Action::Latency);
    }
    rv::parse(text)
        .map(Action::Fail)
        .ok_or_else(|| format!("unknown action `{text}` (a CKR_ name or number, logout, latency:N)"))
}

fn parse_latency(text: &str) -> Result<Duration, String> {
    let (digits, scale) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1000)
    } else if let Some(d) = text.strip_suffix("us") {
        (d, 1)
    } else {
        (text, 1)
    };
    let n: u64 = digits.trim().parse().map_err(|_| format!("`{text}` is not a latency in microseconds"))?;
    n.checked_mul(scale).map(Duration::from_micros).ok_or_else(|| format!("latency `{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::{CKR_DEVICE_ERROR, CKR_GENERAL_ERROR, CKR_SESSION_HANDLE_INVALID};

    fn fired(config: &Config, function: &str, calls: u64) -> Vec<u64> {
        (1..=calls).filter(|_| config.plan(function).fail.is_some()).collect()
    }

    #[test]
    fn nth_every_after() {
        let c = Config::parse("C_Encrypt@3=CKR_DEVICE_ERROR").unwrap();
        assert_eq!(fired(&c, "C_Encrypt", 10), vec![3]);
        let c = Config::parse("Sign%4=CKR_GENERAL_ERROR").unwrap();
        assert_eq!(fired(&c, "C_Sign", 12), vec![4, 8, 12]);
        let c = Config::parse("*>2=CKR_DEVICE_REMOVED").unwrap();
        assert_eq!(fired(&c, "C_GetInfo", 5), vec![3, 4, 5]);
    }

    #[test]
    fn other_functions_are_not_counted() {
        let c = Config::parse("C_Encrypt@2=0x30").unwrap();
        assert_eq!(c.plan("C_Decrypt"), Plan::default());
        assert_eq!(c.plan("C_Encrypt").fail, None);
        assert_eq!(c.plan("C_Decrypt").fail, None);
        assert_eq!(c.plan("C_Encrypt").fail, Some(CKR_DEVICE_ERROR));
    }

    #[test]
    fn rate_is_reproducible_and_roughly_right() {
        let a = Config::parse("C_Sign~0.25/7=CKR_GENERAL_ERROR").unwrap();
        let b = Config::parse("C_Sign~0.25/7=CKR_GENERAL_ERROR").unwrap();
        let fa = fired(&a, "C_Sign", 2000);
        assert_eq!(fa, fired(&b, "C_Sign", 2000));
        assert!((350..650).contains(&fa.len()), "{} of 2000", fa.len());
        let never = Config::parse("C_Sign~0=CKR_GENERAL_ERROR").unwrap();
        assert!(fired(&never, "C_Sign", 100).is_empty());
        let always = Config::parse("C_Sign~1=CKR_GENERAL_ERROR").unwrap();
        assert_eq!(fired(&always, "C_Sign", 100).len(), 100);
    }

    #[test]
    fn actions_combine() {
        let c = Config::parse(
            "# a comment\n*=latency:100\nC_Encrypt=latency:2ms; C_Encrypt@1=logout\nC_Encrypt=CKR_SESSION_HANDLE_INVALID\n*=CKR_GENERAL_ERROR",
        )
        .unwrap();
        let p = c.plan("C_Encrypt");
        assert_eq!(p.latency, Duration::from_micros(2100));
        assert!(p.logout);
        assert_eq!(p.fail, Some(CKR_SESSION_HANDLE_INVALID));
        let p = c.plan("C_Encrypt");
        assert!(!p.logout);
        let p = c.plan("C_Sign");
        assert_eq!((p.latency, p.fail), (Duration::from_micros(100), Some(CKR_GENERAL_ERROR)));
    }

    #[test]
    fn vendor_switches() {
        let c = Config::parse("vendor=no-gcm; vendor = gcm-iv-after-tag").unwrap();
        assert!(c.vendor.no_gcm && c.vendor.gcm_iv_after_tag);
        assert!(c.rules.is_empty() && !c.is_empty());
        assert!(Config::parse("  ;\n# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn readme_examples_parse() {
        let readme = include_str!("../README.md");
        let examples = readme.split("## Examples").nth(1).expect("examples section");
        let block = examples.split("```text").nth(1).and_then(|b| b.split("```").next()).expect("example block");
        let config = Config::parse(block).expect("README examples");
        assert_eq!(config.rules.len(), 8);
        assert!(config.vendor.gcm_iv_after_tag);
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            "C_Encrypt",
            "C_Encrypt@0=CKR_DEVICE_ERROR",
            "C_Encrypt@x=CKR_DEVICE_ERROR",
            "C_Encrypt%0=CKR_DEVICE_ERROR",
            "C_Frobnicate=CKR_DEVICE_ERROR",
            "=CKR_DEVICE_ERROR",
            "C_Encrypt=CKR_NOT_A_CODE",
            "C_Encrypt=latency:soon",
            "C_Encrypt~1.5=CKR_DEVICE_ERROR",
            "C_Encrypt~0.5/x=CKR_DEVICE_ERROR",
            "C_Encrypt!3=CKR_DEVICE_ERROR",
            "vendor=thales",
        ] {
            let err = Config::parse(bad).expect_err(bad);
            assert_eq!(err.item, bad.trim());
        }
    }
}
