/* Client authentication: the -Y file and its checks.  See client_auth.h. */
#include "node/client_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define AUTH_FILE_MAX (1024 * 1024)  /* a larger auth file is a mistake */

struct credential {
	const char *user, *password;
	size_t nuser, npassword;
};

struct client_auth {
	char *text;                 /* the file's bytes, which creds point into */
	struct credential *creds;
	size_t ncreds;
};

static int
load_error(char *err, size_t errlen, const char *path, const char *why)
{
	snprintf(err, errlen, "%s: %s", path, why);
	return -1;
}

/* Split a->text into credentials, in place. */
static int
parse_lines(struct client_auth *a, size_t len, const char *path, char *err, size_t errlen)
{
	char *p = a->text, *end = a->text + len;
	long line = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl != NULL ? nl : end, *colon;
		struct credential *c;

		line++;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (eol == p) {
			p = (nl != NULL ? nl : end) + (nl != NULL);
			continue;
		}
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL) {
			snprintf(err, errlen, "%s:%ld: malformed entry (lines are user:password)", path,
			         line);
			return -1;
		}
		c = &a->creds[a->ncreds++];
		c->user = p;
		c->nuser = (size_t)(colon - p);
		c->password = colon + 1;
		c->npassword = (size_t)(eol - colon - 1);
		p = nl != NULL ? nl + 1 : end;
	}
	return 0;
}

int
client_auth_load(const char *path, struct client_auth **out, char *err, size_t errlen)
{
	struct client_auth *a = calloc(1, sizeof(*a));
	FILE *f = fopen(path, "rb");
	size_t len = 0, lines = 1;

	*out = NULL;
	if (f == NULL || a == NULL || (a->text = malloc(AUTH_FILE_MAX + 1)) == NULL) {
		int e = f == NULL ? errno : ENOMEM;

		if (f != NULL)
			fclose(f);
		client_auth_free(a);
		return load_error(err, errlen, path, strerror(e));
	}
	len = fread(a->text, 1, AUTH_FILE_MAX + 1, f);
	if (ferror(f) || len > AUTH_FILE_MAX) {
		fclose(f);
		client_auth_free(a);
		return load_error(err, errlen, path, len > AUTH_FILE_MAX ? "larger than 1 MB"
		                                                         : "read error");
	}
	fclose(f);
	if (len < AUTH_FILE_MAX) {
		/* Kept for the process's life: only what the file holds. */
		char *shrunk = realloc(a->text, len + 1);

		if (shrunk != NULL)
			a->text = shrunk;
	}
	for (size_t i = 0; i < len; i++)
		lines += a->text[i] == '\n';
	a->creds = calloc(lines, sizeof(*a->creds));
	if (a->creds == NULL || parse_lines(a, len, path, err, errlen) != 0) {
		if (a->creds == NULL)
			load_error(err, errlen, path, strerror(ENOMEM));
		client_auth_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

void
client_auth_free(struct client_auth *a)
{
	if (a == NULL)
		return;
	free(a->creds);
	free(a->text);
	free(a);
}

bool
client_auth_check(const struct client_auth *a, const char *user, size_t nuser,
                  const char *password, size_t npassword)
{
	bool ok = false;

	/* Every line is looked at, and every password of the right length
	 * compared in constant time. */
	for (size_t i = 0; i < a->ncreds; i++) {
		const struct credential *c = &a->creds[i];
		bool same_user = c->nuser == nuser && memcmp(c->user, user, nuser) == 0;
		bool same_password = c->npassword == npassword &&
		                     CRYPTO_memcmp(c->password, password, npassword) == 0;

		ok |= same_user && same_password;
	}
	return ok;
}

bool
client_auth_plain(const struct client_auth *a, const char *msg, size_t len)
{
	const char *end = msg + len;
	const char *authzid = msg, *authcid, *password;
	const char *nul1 = memchr(msg, '\0', len), *nul2;

	if (nul1 == NULL)
		return false;
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', (size_t)(end - authcid));
	if (nul2 == NULL)
		return false;
	password = nul2 + 1;
	if (memchr(password, '\0', (size_t)(end - password)) != NULL)
		return false;
	if (nul1 != authzid &&
	    ((size_t)(nul1 - authzid) != (size_t)(nul2 - authcid) ||
	     memcmp(authzid, authcid, (size_t)(nul1 - authzid)) != 0))
		return false;
	return client_auth_check(a, authcid, (size_t)(nul2 - authcid), password,
	                         (size_t)(end - password));
}

/* The next space-separated token of [*p, end), skipping empty ones. */
static bool
next_token(const char **p, const char *end, const char **tok, size_t *ntok)
{
	while (*p < end && **p == ' ')
		(*p)++;
	if (*p == end)
		return false;
	*tok = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*ntok = (size_t)(*p - *tok);
	return true;
}

enum client_auth_token
client_auth_ascii_token(const struct client_auth *a, const char *data, size_t len)
{
	const char *p = data, *end = data + len, *user, *password;
	size_t nuser, npassword;

	if (!next_token(&p, end, &user, &nuser) || !next_token(&p, end, &password, &npassword))
		return CLIENT_AUTH_BAD_FORMAT;
	return client_auth_check(a, user, nuser, password, npassword) ? CLIENT_AUTH_OK
	                                                              : CLIENT_AUTH_FAILURE;
}
