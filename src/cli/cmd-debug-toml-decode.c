/* miren debug toml-decode: the toml-test decoder interface. */
#include "cli/cli.h"
#include "toml/toml.h"
#include "util/compiler.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int exec(struct cli *cli MIREN_UNUSED, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct strbuf sb;
	strbuf_init(&sb, 64u << 20);
	if (strbuf_read_fd(&sb, STDIN_FILENO) != 0) {
		strbuf_release(&sb);
		return cli_failf(MIREN_EIO, NULL, "cannot read standard input");
	}
	struct toml_error err;
	struct toml_value *root = toml_parse(sb.buf, sb.len, &err);
	strbuf_release(&sb);
	if (!root) {
		/* Exit 1, as toml-test expects of a decoder, not CLI_INVALID. */
		cli_failf(MIREN_EINTERNAL, NULL, "%d:%d: %s", err.line, err.col, err.reason);
		return CLI_FAIL;
	}
	char *json = toml_to_tagged_json(root);
	printf("%s\n", json);
	free(json);
	toml_free(root);
	return CLI_OK;
}

const struct cmd_entry cmd_debug_toml_decode_entry = {
	.name = "debug toml-decode",
	.summary = "decode TOML from stdin into toml-test's tagged JSON",
	.operands = "< FILE.toml", /* no operand: the usage line shows the redirection */
	.help = "Reads a TOML document on standard input and prints it in the tagged JSON\n"
		"form of the toml-test suite ({\"a\":{\"type\":\"integer\",\"value\":\"1\"}}).\n"
		"Exits 1 with LINE:COLUMN and a reason when the document is invalid.\n",
	.exec = exec,
};
