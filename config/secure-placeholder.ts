/**
 * Stands in for every secure value when the program is evaluated offline
 * (`plan`, `validate`, `diff`, the policy run): nothing is ever decrypted
 * there. URL-shaped, because some secrets are URLs the program parses; it is
 * a secret, so it prints as [secret]. `diff` appends a digest of the
 * ciphertext to it.
 */
export const SECURE_PLACEHOLDER = "placeholder://not-decrypted@secure-value.invalid:1/placeholder";

/** Whether a secure value is the offline stand-in, not a value the engine decrypted: rules that read a secret's value skip it. */
export const isUndecrypted = (value: string): boolean => value.startsWith(SECURE_PLACEHOLDER);
