/* cairn: the server's entry point. */
#include <limits.h>
#include <stdio.h>

#include "storage/log.h"
#include "node/server.h"
#include "node/settings.h"

int
main(int argc, char **argv)
{
	struct settings settings;
	char err[PATH_MAX + 512];
	int status;

	settings_init(&settings);
	switch (settings_parse(&settings, argc, argv, err, sizeof(err))) {
	case SETTINGS_EXIT_OK:
		settings_free(&settings);
		return 0;
	case SETTINGS_EXIT_USAGE:
		fprintf(stderr, "%s\n", err);
		settings_free(&settings);
		return 2;
	case SETTINGS_RUN:
		break;
	}
	settings_print_notices(&settings, stderr);
	log_set_level(settings.verbose);
	status = server_run(&settings);
	settings_free(&settings);
	return status;
}
