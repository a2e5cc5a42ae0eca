//! CLI commands generated from the use-case registry: a use case whose command words have no
//! hand-written clap command gets one, with one `--flag` per input property (`account_id`
//! becomes `--account-id`, required when the schema requires it). Its input is checked
//! against the use case's schema by the pipeline, like an MCP call's, and its output is shown
//! as JSON in both modes. Hand-written commands (with their table renderings) win.
//!
//! A live write (`orders live-submit`, `live-bracket-submit`, `live-modify`, `live-cancel`)
//! also takes `--enable-live`, without which it is refused (`LIVE_ENABLE_FLAG_REQUIRED`,
//! audited) before anything else, and `--live-broker local-candidate|client-portal|refusing`
//! (default `local-candidate`: a smoke test places nothing at the broker). The flag is a
//! deliberate keystroke, not a security boundary: the gateway's live gates are.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Command as ClapCommand, CommandFactory, FromArgMatches};
use serde_json::{Map, Value};

use crate::adapters::inbound::cli::args::Cli;
use crate::app::live_settings::LiveWriterKind;
use crate::app::use_cases::{self, Entry};
use crate::domain::scope::Scope;

/// The `--live-broker` spellings, in the order `--help` shows them.
const LIVE_BROKERS: [(&str, LiveWriterKind); 3] = [
    ("local-candidate", LiveWriterKind::LocalCandidate),
    ("client-portal", LiveWriterKind::ClientPortal),
    ("refusing", LiveWriterKind::Refusing),
];

/// What a live write's command line said about going live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveFlags {
    /// `--enable-live` was given.
    pub enabled: bool,
    /// `--live-broker`: the writer this invocation uses.
    pub broker: LiveWriterKind,
}

/// True for the live write use cases, which take the live flags.
pub fn is_live_write(entry: &Entry) -> bool {
    matches!(
        entry.definition().scope,
        Scope::OrdersLiveSubmit
            | Scope::OrdersLiveBracketSubmit
            | Scope::OrdersLiveModify
            | Scope::OrdersLiveCancel
    )
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation {
    /// A hand-written command (boxed: its arguments dwarf a generated call).
    Written(Box<Cli>),
    /// A command generated from the registry.
    Generated(GeneratedCall),
}

/// A generated command's call.
#[derive(Debug)]
pub struct GeneratedCall {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// The use case.
    pub entry: &'static Entry,
    /// Its arguments, as JSON.
    pub arguments: Map<String, Value>,
    /// For a live write, the live flags; `None` for every other use case.
    pub live: Option<LiveFlags>,
}

/// True when `words` name a hand-written command.
fn is_written(root: &ClapCommand, words: &str) -> bool {
    let mut current = root;
    for word in words.split(' ') {
        match current.find_subcommand(word) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
}

/// The registered use cases without a hand-written command.
fn generated_entries(root: &ClapCommand, entries: &'static [Entry]) -> Vec<&'static Entry> {
    entries
        .iter()
        .filter(|entry| !is_written(root, entry.definition().command))
        .collect()
}

fn properties(entry: &'static Entry) -> impl Iterator<Item = (&'static str, &'static Value)> {
    entry
        .input_schema()
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|properties| properties.iter())
        .map(|(name, schema)| (name.as_str(), schema))
}

fn leaf(word: &'static str, entry: &'static Entry) -> ClapCommand {
    let required: Vec<&str> = entry
        .input_schema()
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut command = ClapCommand::new(word).about(entry.definition().description);
    for (name, schema) in properties(entry) {
        // clap keeps borrowed names without its `string` feature; the few flag names of the
        // generated commands live as long as the process anyway.
        let flag: &'static str = name.replace('_', "-").leak();
        let mut arg = Arg::new(name)
            .long(flag)
            .value_name("VALUE")
            .required(required.contains(&name));
        if let Some(help) = schema.get("description").and_then(Value::as_str) {
            arg = arg.help(help);
        }
        command = command.arg(arg);
    }
    if is_live_write(entry) {
        command = command
            .arg(
                Arg::new("enable_live")
                    .long("enable-live")
                    .action(clap::ArgAction::SetTrue)
                    .help("Confirms a live (real-money) write; refused without it"),
            )
            .arg(
                Arg::new("live_broker")
                    .long("live-broker")
                    .value_name("WRITER")
                    .value_parser(LIVE_BROKERS.map(|(name, _)| name))
                    .default_value("local-candidate")
                    .help("The live writer for this call (local-candidate places nothing at the broker)"),
            );
    }
    command
}

fn add(command: ClapCommand, words: &[&'static str], entry: &'static Entry) -> ClapCommand {
    match words {
        [] => command,
        [last] => command.subcommand(leaf(last, entry)),
        [first, rest @ ..] => {
            if command.find_subcommand(first).is_some() {
                command.mut_subcommand(*first, |group| add(group, rest, entry))
            } else {
                let group = ClapCommand::new(*first).subcommand_required(true);
                command.subcommand(add(group, rest, entry))
            }
        }
    }
}

/// The full command line: the hand-written commands plus one per use case without one.
pub fn command() -> ClapCommand {
    command_for(use_cases::registry())
}

fn command_for(entries: &'static [Entry]) -> ClapCommand {
    let mut root = Cli::command();
    for entry in generated_entries(&Cli::command(), entries) {
        let words: Vec<&'static str> = entry.definition().command.split(' ').collect();
        root = add(root, &words, entry);
    }
    root
}

/// A flag's text as the JSON its schema expects (a number or a boolean when it reads as
/// one); anything else stays text, and the schema check names the flag if it must not be.
fn typed_value(schema: &Value, text: &str) -> Value {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types
        .iter()
        .any(|name| *name == "integer" || *name == "number")
        && let Ok(number) = text.parse::<serde_json::Number>()
    {
        return Value::Number(number);
    }
    if types.contains(&"boolean")
        && let Ok(flag) = text.parse::<bool>()
    {
        return Value::Bool(flag);
    }
    Value::String(text.to_owned())
}

/// Reads parsed matches as a hand-written or a generated command.
///
/// # Errors
/// clap's error when the matches fit no hand-written command (which clap already refused).
pub fn invocation(matches: &ArgMatches) -> Result<Invocation, clap::Error> {
    invocation_for(matches, use_cases::registry())
}

fn invocation_for(
    matches: &ArgMatches,
    entries: &'static [Entry],
) -> Result<Invocation, clap::Error> {
    let mut words = Vec::new();
    let mut leaf_matches = matches;
    while let Some((name, sub)) = leaf_matches.subcommand() {
        words.push(name);
        leaf_matches = sub;
    }
    let called = words.join(" ");
    let generated = generated_entries(&Cli::command(), entries)
        .into_iter()
        .find(|entry| entry.definition().command == called);
    let Some(entry) = generated else {
        return Cli::from_arg_matches(matches).map(|cli| Invocation::Written(Box::new(cli)));
    };
    let mut arguments = Map::new();
    for (name, schema) in properties(entry) {
        if let Some(text) = leaf_matches.get_one::<String>(name) {
            arguments.insert(name.to_owned(), typed_value(schema, text));
        }
    }
    let live = is_live_write(entry).then(|| LiveFlags {
        enabled: leaf_matches.get_flag("enable_live"),
        broker: leaf_matches
            .get_one::<String>("live_broker")
            .and_then(|name| LIVE_BROKERS.iter().find(|(known, _)| known == name))
            .map_or(LiveWriterKind::LocalCandidate, |(_, kind)| *kind),
    });
    Ok(Invocation::Generated(GeneratedCall {
        config: leaf_matches.get_one::<PathBuf>("config").cloned(),
        json: leaf_matches.get_flag("json"),
        log_level: leaf_matches.get_one::<String>("log_level").cloned(),
        entry,
        arguments,
        live,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use serde_json::json;

    use super::*;
    use crate::app::use_cases::reads::{ExecutionsList, MarketSnapshot, PositionsList};

    /// Use cases whose command words have no hand-written command, as a new one would.
    static UNWRITTEN: LazyLock<Vec<Entry>> = LazyLock::new(|| {
        vec![
            Entry::of::<PositionsList>().with_command("holdings show"),
            Entry::of::<MarketSnapshot>().with_command("market quote"),
            Entry::of::<ExecutionsList>().with_command("positions list"),
        ]
    });

    fn parse(words: &[&str]) -> Result<Invocation, clap::Error> {
        let matches = command_for(&UNWRITTEN).try_get_matches_from(words)?;
        invocation_for(&matches, &UNWRITTEN)
    }

    #[test]
    fn a_use_case_without_a_written_command_gets_one_with_its_input_as_flags() {
        let Ok(Invocation::Generated(call)) = parse(&[
            "ibkr-agent",
            "holdings",
            "show",
            "--account-id",
            "DU1234567",
            "--json",
        ]) else {
            panic!("not generated")
        };
        assert_eq!(call.entry.definition().command, "holdings show");
        assert_eq!(
            Value::Object(call.arguments),
            json!({"account_id": "DU1234567"})
        );
        assert!(call.json);
        // Under an existing group, with a number typed as the schema says.
        let Ok(Invocation::Generated(call)) =
            parse(&["ibkr-agent", "market", "quote", "--contract-id", "265598"])
        else {
            panic!("not generated")
        };
        assert_eq!(
            Value::Object(call.arguments),
            json!({"contract_id": 265598})
        );
    }

    #[test]
    fn required_flags_are_required_and_written_commands_win() {
        assert!(parse(&["ibkr-agent", "holdings", "show"]).is_err());
        assert!(parse(&["ibkr-agent", "no", "such"]).is_err());
        assert!(matches!(
            parse(&["ibkr-agent", "positions", "list", "--account", "DU1234567"]),
            Ok(Invocation::Written(_))
        ));
    }
}
