/* cairn: the server's entry point. */
#include <stdio.h>

#include "storage/log.h"
#include "node/server.h"
#include "node/settings.h"

int
main(int argc, char **argv)
{
	struct settings settings;
	char err[512];

	settings_init(&settings);
	switch (settings_parse(&settings, argc, argv, err, sizeof(err))) {
	case SETTINGS_EXIT_OK:
		return 0;
	case SETTINGS_EXIT_USAGE:
		fprintf(stderr, "%s\n", err);
		return 2;
	case SETTINGS_RUN:
		break;
	}
	log_set_level(settings.verbose);
	return server_run(&settings);
}
