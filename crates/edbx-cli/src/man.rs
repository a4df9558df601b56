//! `edbx man`: one page for the whole tool. clap_mangen's own subcommand section points to a
//! page per command (`edbx-create(1)`), which is not installed; this one names the commands as
//! they are typed, with their arguments, and says where their flags are explained.

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::cli::Cli;

/// The man page, in roff.
pub fn page() -> std::io::Result<Vec<u8>> {
    let cli = Cli::command();
    let man = Man::new(cli.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    roff.text([
        roman("Each command's arguments and flags: "),
        bold("edbx COMMAND --help"),
        roman(" (or "),
        bold("help COMMAND"),
        roman(" in "),
        bold("edbx shell"),
        roman(")."),
    ]);
    commands(&mut roff, "edbx", &cli);
    roff.to_writer(&mut page)?;
    man.render_extra_section(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// Every command under `parent`, as typed (`edbx snapshots create TYPE ID`), then its own.
fn commands(roff: &mut Roff, prefix: &str, parent: &clap::Command) {
    for command in parent.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("{prefix} {}", command.get_name());
        let mut line = vec![bold(name.clone())];
        for arg in command.get_positionals() {
            let value = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
            line.push(roman(" "));
            line.push(italic(value));
        }
        let aliases: Vec<&str> = command.get_visible_aliases().collect();
        if !aliases.is_empty() {
            line.push(roman(format!(" (also: {})", aliases.join(", "))));
        }
        roff.control("TP", []);
        roff.text(line);
        if let Some(about) = command.get_about() {
            roff.text([roman(about.to_string())]);
        }
        commands(roff, &name, command);
    }
}
