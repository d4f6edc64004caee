/*
 * miren completion SHELL: prints a bash or zsh completion script made from
 * the command table, so completion knows every command and option the
 * binary has (cmake --install installs both; see CMakeLists.txt).
 *
 * The script holds the data (command names, each command's options and
 * which of them take a value) and one shell function, _miren_candidates,
 * written in the subset of shell that bash and zsh share; each shell's own
 * wrapper turns its answer into completions.
 */
#include "cli/cli.h"
#include "util/compiler.h"

#include <stdio.h>
#include <string.h>

/* Prints the options of e, space-separated; valued: only those that take
 * a value.  The common ones are the parser's (src/cli/run.c prepare). */
static void print_options(const struct cmd_entry *e, bool valued)
{
	if (!valued)
		printf("--help -h");
	if (e->flags & CMD_NEEDS_SERVER)
		printf(valued ? "--socket --cluster" : " --socket --cluster");
	if (e->flags & CMD_JSON)
		printf(" --format");
	if (e->app != CLI_APP_NONE)
		printf(" --app -a");
	for (const struct cli_optdef *o = e->options; o && o->name; o++) {
		if (valued && o->kind == CLI_OPT_FLAG)
			continue;
		printf(" --%s", o->name);
		if (o->letter)
			printf(" -%c", o->letter);
	}
}

static void print_case(const char *fn, bool valued)
{
	printf("%s() {\n  case \"$1\" in\n", fn);
	for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
		if ((*e)->flags & CMD_HIDDEN)
			continue;
		printf("    \"%s\") echo \"", (*e)->name);
		print_options(*e, valued);
		printf("\" ;;\n");
	}
	printf("    *) echo \"%s\" ;;\n  esac\n}\n", valued ? "" : "--help -h");
}

static const char common[] =
	"# _miren_candidates WORDS PREV CUR ONLY: what may follow.  WORDS: the\n"
	"# words typed before the first option; PREV: the word before CUR; ONLY:\n"
	"# 1 when every word before CUR is a command word.  Prints the candidates,\n"
	"# or __files__ for the shell's file completion.\n"
	"_miren_candidates() {\n"
	"  _mc_typed=$1 _mc_best=\"\"\n"
	"  while IFS= read -r _mc_c; do\n"
	"    case \" $_mc_typed \" in \" $_mc_c \"*)\n"
	"      [ \"${#_mc_c}\" -gt \"${#_mc_best}\" ] && _mc_best=$_mc_c ;;\n"
	"    esac\n"
	"  done <<EOF\n"
	"$_miren_commands\n"
	"EOF\n"
	"  case \"$3\" in -*) _miren_options \"$_mc_best\"; return ;; esac\n"
	"  if [ -n \"$2\" ]; then\n"
	"    case \" $(_miren_valued \"$_mc_best\") \" in *\" $2 \"*) echo __files__; "
	"return ;; esac\n"
	"  fi\n"
	"  if [ \"$4\" = 1 ]; then\n"
	"    _mc_out=$(while IFS= read -r _mc_c; do\n"
	"      if [ -z \"$_mc_typed\" ]; then echo \"${_mc_c%% *}\"\n"
	"      else case \"$_mc_c\" in \"$_mc_typed \"*) _mc_r=${_mc_c#\"$_mc_typed \"}; "
	"echo \"${_mc_r%% *}\" ;; esac; fi\n"
	"    done <<EOF | sort -u\n"
	"$_miren_commands\n"
	"EOF\n"
	"    )\n"
	"    [ -n \"$_mc_out\" ] && { echo \"$_mc_out\"; return; }\n"
	"  fi\n"
	"  echo __files__\n"
	"}\n";

static const char bash_tail[] =
	"_miren() {\n"
	"  local cur=${COMP_WORDS[COMP_CWORD]} prev=\"\" typed=\"\" only=1 i w out\n"
	"  local _mc_typed _mc_best _mc_c _mc_r _mc_out\n"
	"  [ \"$COMP_CWORD\" -gt 1 ] && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	"  for ((i = 1; i < COMP_CWORD; i++)); do\n"
	"    w=${COMP_WORDS[i]}\n"
	"    case \"$w\" in -*) only=0; break ;; esac\n"
	"    typed=\"${typed:+$typed }$w\"\n"
	"  done\n"
	"  out=$(_miren_candidates \"$typed\" \"$prev\" \"$cur\" \"$only\")\n"
	"  if [ \"$out\" = __files__ ]; then\n"
	"    compopt -o default 2>/dev/null\n"
	"    COMPREPLY=()\n"
	"  else\n"
	"    mapfile -t COMPREPLY < <(compgen -W \"$out\" -- \"$cur\")\n"
	"  fi\n"
	"}\n"
	"complete -F _miren miren\n";

static const char zsh_tail[] =
	"_miren_zsh() {\n"
	"  local cur=${words[CURRENT]} prev=\"\" typed=\"\" only=1 i w out\n"
	"  local _mc_typed _mc_best _mc_c _mc_r _mc_out\n"
	"  (( CURRENT > 2 )) && prev=${words[CURRENT-1]}\n"
	"  for ((i = 2; i < CURRENT; i++)); do\n"
	"    w=${words[i]}\n"
	"    case \"$w\" in -*) only=0; break ;; esac\n"
	"    typed=\"${typed:+$typed }$w\"\n"
	"  done\n"
	"  out=$(_miren_candidates \"$typed\" \"$prev\" \"$cur\" \"$only\")\n"
	"  if [ \"$out\" = __files__ ]; then _files; else compadd -- ${(f)out}; fi\n"
	"}\n"
	"_miren_zsh \"$@\"\n";

static int exec(struct cli *cli MIREN_UNUSED, int argc MIREN_UNUSED, char **argv)
{
	bool zsh = !strcmp(argv[0], "zsh");
	if (!zsh && strcmp(argv[0], "bash"))
		return cli_failf(MIREN_EINVAL, "give bash or zsh",
				 "no completion for the shell '%s'", argv[0]);
	if (zsh)
		printf("#compdef miren\n");
	printf("# %s completion for miren %s, made by 'miren completion %s' from the\n"
	       "# binary's command table.\n",
	       argv[0], MIREN_VERSION, argv[0]);
	printf("_miren_commands='");
	const char *sep = "";
	for (const struct cmd_entry *const *e = cmd_table; *e; e++)
		if (!((*e)->flags & CMD_HIDDEN)) {
			printf("%s%s", sep, (*e)->name);
			sep = "\n";
		}
	printf("'\n");
	print_case("_miren_options", false);
	print_case("_miren_valued", true);
	fputs(common, stdout);
	fputs(zsh ? zsh_tail : bash_tail, stdout);
	return CLI_OK;
}

const struct cmd_entry cmd_completion_entry = {
	.name = "completion",
	.summary = "print a shell completion script (bash or zsh)",
	.operands = "SHELL",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which shell? give bash or zsh",
	.operands_help = "  SHELL                 bash or zsh\n",
	.help = "Prints a script that completes miren's commands and options, made from\n"
		"this binary's own command table. 'cmake --install' installs both scripts;\n"
		"to use one by hand:\n"
		"  bash: source <(miren completion bash)\n"
		"  zsh:  miren completion zsh > ~/.zsh/functions/_miren  (a directory in\n"
		"        $fpath), then compinit\n",
	.exec = exec,
};
