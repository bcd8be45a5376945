/** How a secret prints in every plan, diff and log. */
export const SECRET = "[secret]";
/** How a value prints that only a real deploy knows. */
export const UNKNOWN = "[unknown]";
