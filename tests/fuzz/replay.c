/*
 * Runs a fuzz target over every file of the corpus directories (or files)
 * named on the command line, so each build replays the corpus as a test
 * without libFuzzer.  An empty or missing corpus is a failure: a replay
 * that runs nothing proves nothing.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_FILE_MAX (1u << 20)

static int
replay_file(const char *path)
{
	FILE *f;
	uint8_t *buf;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		return -1;
	}
	if ((buf = malloc(REPLAY_FILE_MAX)) == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, REPLAY_FILE_MAX, f);
	fclose(f);
	/* Copy to an exact-size block so ASan sees reads past the end. */
	uint8_t *exact = malloc(n ? n : 1);
	if (exact == NULL) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

int
main(int argc, char **argv)
{
	long count = 0;
	char path[4096];

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *de;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: no corpus at %s\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]) != 0)
				return 1;
			count++;
			continue;
		}
		if ((d = opendir(argv[i])) == NULL)
			return 1;
		while ((de = readdir(d)) != NULL) {
			int len;

			if (de->d_name[0] == '.')
				continue;
			len = snprintf(
			    path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (len < 0 || (size_t)len >= sizeof(path)) {
				closedir(d);
				return 1;
			}
			if (replay_file(path) != 0) {
				closedir(d);
				return 1;
			}
			count++;
		}
		closedir(d);
	}
	if (count == 0) {
		fprintf(stderr, "replay: empty corpus\n");
		return 1;
	}
	printf("replay: %ld inputs ran clean\n", count);
	return 0;
}
