//! What both binaries' `main` does around its library call: usage errors and
//! results on the streams a Unix tool uses them for.

use std::io::Write;
use std::process::ExitCode;

pub mod download;

/// The parser of a library type's named choice (`--pool avg`): `--help`
/// lists `names`, and the type's own `FromStr` turns a name into a value, so
/// the library needs no command-line derive.
pub fn choice<T>(names: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names).try_map(|name| name.parse::<T>())
}

/// A library's error on stderr as one line, `PROG: what is wrong`, with
/// the binary's hint after it (what in this repository mends it: library
/// errors name no script), and exit status 1.
pub fn fail(prog: &str, error: &dyn std::fmt::Display, hint: Option<&str>) -> ExitCode {
    match hint {
        Some(h) => eprintln!("{prog}: {error}; {h}"),
        None => eprintln!("{prog}: {error}"),
    }
    ExitCode::FAILURE
}

/// The repository's hint for a `--model` that could not be opened.
pub fn model_hint(e: &backbone::source::Error) -> Option<&'static str> {
    use backbone::source::Error;
    match e {
        Error::Missing(_) => Some("scripts/setup.sh writes the offline test model models/resnet50.onnx"),
        Error::Fetch { .. } => {
            Some("or use --model models/resnet50.onnx, the untrained test model scripts/setup.sh writes")
        }
        _ => None,
    }
}

/// Exit status of a command line that does not parse.
pub const USAGE_EXIT: u8 = 2;

/// Parses the command line; `--help` and `--version` print and exit 0 as
/// clap does, and a command given nothing (`classify` alone) prints its
/// help; anything else wrong is [`usage_error`]'s message.
pub fn parse<P: clap::Parser>(prog: &str) -> Result<P, ExitCode> {
    match P::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => Err(usage_error(prog, &e)),
    }
}

/// A command-line parser's error on stderr, with exit status 2: its first
/// line `PROG: what is wrong`, as every other error of the tools, then
/// what clap adds below it, whole: the arguments that are missing, the
/// allowed values, "did you mean", the usage line.
pub fn usage_error(prog: &str, error: &dyn std::fmt::Display) -> ExitCode {
    eprint!("{}", usage_message(prog, &error.to_string()));
    ExitCode::from(USAGE_EXIT)
}

/// clap's message with its `error: ` turned into `PROG: `, and no blank
/// line at its end.
pub fn usage_message(prog: &str, clap_message: &str) -> String {
    let msg = clap_message.trim_end();
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    format!("{prog}: {msg}\n")
}

/// Results go to stdout; a reader that stops early (`| head`) ends the run
/// quietly, as it does for any Unix filter.
pub fn emit(prog: &str, text: &str) {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => eprintln!("{prog}: stdout: {e}"),
        Ok(()) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "classify")]
    enum Cmd {
        Predict {
            file: String,
            #[arg(long)]
            out: String,
            #[arg(long, value_parser = ["logistic", "svm", "knn"])]
            model: Option<String>,
            #[arg(long)]
            layer: Option<String>,
        },
        Fit,
    }

    fn message(args: &[&str]) -> String {
        let e = Cmd::try_parse_from(args).unwrap_err();
        usage_message("classify", &e.to_string())
    }

    #[test]
    fn clap_whole_message_reaches_the_user_after_one_prefixed_line() {
        let missing = message(&["classify", "predict", "f.parquet"]);
        assert!(
            missing.starts_with("classify: the following required arguments were not provided:\n  --out <OUT>\n"),
            "{missing}"
        );
        assert!(missing.contains("Usage: classify predict --out <OUT> <FILE>"), "{missing}");
        let values = message(&["classify", "predict", "f", "--out", "o", "--model", "foo"]);
        assert!(values.contains("[possible values: logistic, svm, knn]"), "{values}");
        let typo = message(&["classify", "fitt"]);
        assert!(typo.contains("similar subcommand exists: 'fit'") || typo.contains("'fit'"), "{typo}");
        let flag = message(&["classify", "predict", "f", "--out", "o", "--layr", "x"]);
        assert!(flag.contains("--layer"), "{flag}");
        assert!(!missing.contains("error:") && missing.ends_with('\n') && !missing.ends_with("\n\n"), "{missing:?}");
    }
}
