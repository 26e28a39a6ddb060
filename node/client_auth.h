/* Client authentication (-Y FILE, -S): memcached's auth file of
 * `user:password` lines, checked by the ASCII protocol's `set` convention
 * (node/proto_text.c) and by the binary protocol's SASL PLAIN.
 *
 * The file is read once at startup; the loaded table is read-only after, so
 * any worker thread may check against it without a lock.  Passwords of
 * the right length are compared in constant time (OpenSSL's CRYPTO_memcmp),
 * so the time a wrong guess takes says nothing about how much of it was
 * right (only, as with any length check, whether its length was).
 *
 * No Cyrus SASL: the only mechanism memcached's clients use is PLAIN
 * (RFC 4616), three NUL-separated fields; libsasl2 would add its sasldb,
 * its plugins and its config path for what is one table lookup here.
 */
#ifndef CAIRN_NODE_CLIENT_AUTH_H
#define CAIRN_NODE_CLIENT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct client_auth;

/* The SASL mechanisms offered (SASL_LIST_MECHS). */
#define CLIENT_AUTH_MECHS "PLAIN"

/* Read `path`: one `user:password` per line (the first ':' splits; a
 * trailing "\r" is dropped; empty lines are skipped).  Returns 0 and *out,
 * or -1 with a one-line reason in err (the file cannot be read, or
 * "FILE:LINE: malformed entry"). */
int client_auth_load(const char *path, struct client_auth **out, char *err, size_t errlen);

void client_auth_free(struct client_auth *a);

/* Is user/password a line of the file? */
bool client_auth_check(const struct client_auth *a, const char *user, size_t nuser,
                       const char *password, size_t npassword);

/* SASL PLAIN's message: [authzid] NUL authcid NUL password.  True when
 * authcid/password are a line of the file and authzid is empty or equals
 * authcid (nobody may act as someone else). */
bool client_auth_plain(const struct client_auth *a, const char *msg, size_t len);

/* memcached's ASCII convention: before authenticating, a client sends
 * `set <any key> <flags> <exptime> <bytes>` whose data block is
 * "user password" (split on spaces; more tokens are ignored). */
enum client_auth_token {
	CLIENT_AUTH_OK,          /* STORED (nothing is stored) */
	CLIENT_AUTH_BAD_FORMAT,  /* fewer than two tokens */
	CLIENT_AUTH_FAILURE,     /* not a line of the file */
};

enum client_auth_token client_auth_ascii_token(const struct client_auth *a, const char *data,
                                               size_t len);

#endif
