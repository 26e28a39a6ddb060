/* Replication peer authentication: challenge-response over a shared secret.
 *
 * The primary sends a random nonce; the replica answers with
 * HMAC-SHA256(secret, nonce), computed and compared with OpenSSL's libcrypto
 * (constant-time compare).  The secret never crosses the wire.  Any thread.
 */
#ifndef CAIRN_REPLICATION_AUTH_H
#define CAIRN_REPLICATION_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_NONCE_SIZE 32
#define REPL_PROOF_SIZE 32

/* Read the secret from `path` (trailing newlines dropped).  Returns a malloc'd
 * buffer (*len bytes) or NULL with a message in err. */
char *repl_auth_load_secret(const char *path, size_t *len, char *err, size_t errlen);

/* Fill nonce with REPL_NONCE_SIZE random bytes.  Returns false on failure. */
bool repl_auth_nonce(uint8_t *nonce);

/* proof = HMAC-SHA256(secret, nonce); REPL_PROOF_SIZE bytes. */
void repl_auth_prove(const char *secret, size_t secret_len, const uint8_t *nonce,
                     uint8_t *proof);

/* True if `proof` (proof_len bytes) is right for this secret and nonce. */
bool repl_auth_check(const char *secret, size_t secret_len, const uint8_t *nonce,
                     const uint8_t *proof, size_t proof_len);

#endif
