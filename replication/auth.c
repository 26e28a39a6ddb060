/* Replication peer authentication with HMAC-SHA256 (OpenSSL libcrypto). */
#include "replication/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_MAX 4096

char *
repl_auth_load_secret(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(SECRET_MAX + 1);
	n = buf != NULL ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n > SECRET_MAX) {
		snprintf(err, errlen, "%s: secret longer than %d bytes", path, SECRET_MAX);
		free(buf);
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0) {
		snprintf(err, errlen, "%s: the secret is empty", path);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

bool
repl_auth_nonce(uint8_t *nonce)
{
	return RAND_bytes(nonce, REPL_NONCE_SIZE) == 1;
}

void
repl_auth_prove(const char *secret, size_t secret_len, const uint8_t *nonce,
                uint8_t *proof)
{
	unsigned int len = REPL_PROOF_SIZE;

	HMAC(EVP_sha256(), secret, (int)secret_len, nonce, REPL_NONCE_SIZE, proof, &len);
}

bool
repl_auth_check(const char *secret, size_t secret_len, const uint8_t *nonce,
                const uint8_t *proof, size_t proof_len)
{
	uint8_t expect[REPL_PROOF_SIZE];

	if (proof_len != REPL_PROOF_SIZE)
		return false;
	repl_auth_prove(secret, secret_len, nonce, expect);
	return CRYPTO_memcmp(expect, proof, REPL_PROOF_SIZE) == 0;
}
