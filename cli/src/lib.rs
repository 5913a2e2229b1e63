//! What both binaries' `main` does around its library call: usage errors and
//! results on the streams a Unix tool uses them for.

use std::io::Write;
use std::process::ExitCode;

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

/// Exit status of a command line that does not parse.
pub const USAGE_EXIT: u8 = 2;

/// Parses the command line; `--help` and `--version` print and exit 0 as
/// clap does, anything else wrong is `usage_error`'s one line.
pub fn parse<P: clap::Parser>(prog: &str) -> Result<P, ExitCode> {
    match P::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => Err(usage_error(prog, &e)),
    }
}

/// A command-line parser's error as one line on stderr, `PROG: what is
/// wrong`, and exit status 2. (clap's own message adds usage and a hint on
/// further lines; its first line says what is wrong.)
pub fn usage_error(prog: &str, error: &dyn std::fmt::Display) -> ExitCode {
    let msg = error.to_string();
    let line = msg.lines().next().unwrap_or_default().trim_start_matches("error: ");
    eprintln!("{prog}: {line}");
    ExitCode::from(USAGE_EXIT)
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
