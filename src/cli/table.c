/* The command table: every subcommand, in the order `miren help` lists them. */
#include "cli/cli.h"

extern const struct cmd_entry cmd_server_entry, cmd_deploy_entry, cmd_app_list_entry,
	cmd_app_status_entry, cmd_app_restart_entry, cmd_app_destroy_entry, cmd_env_list_entry,
	cmd_env_set_entry, cmd_env_get_entry, cmd_env_delete_entry, cmd_logs_entry,
	cmd_debug_toml_decode_entry, cmd_addon_list_available_entry, cmd_addon_variants_entry,
	cmd_addon_create_entry, cmd_addon_list_entry, cmd_addon_destroy_entry,
	cmd_debug_disk_list_entry, cmd_debug_invariants_entry, cmd_debug_state_entry,
	cmd_disk_backup_entry, cmd_disk_restore_entry, cmd_disk_resize_entry;

const struct cmd_entry *const cmd_table[] = {
	&cmd_server_entry,
	&cmd_deploy_entry,
	&cmd_app_list_entry,
	&cmd_app_status_entry,
	&cmd_app_restart_entry,
	&cmd_app_destroy_entry,
	&cmd_env_list_entry,
	&cmd_env_set_entry,
	&cmd_env_get_entry,
	&cmd_env_delete_entry,
	&cmd_logs_entry,
	&cmd_addon_list_available_entry,
	&cmd_addon_variants_entry,
	&cmd_addon_create_entry,
	&cmd_addon_list_entry,
	&cmd_addon_destroy_entry,
	&cmd_disk_backup_entry,
	&cmd_disk_restore_entry,
	&cmd_disk_resize_entry,
	&cmd_debug_disk_list_entry,
	&cmd_debug_invariants_entry,
	&cmd_debug_state_entry,
	&cmd_debug_toml_decode_entry,
	NULL,
};
