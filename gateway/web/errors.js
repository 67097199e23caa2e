// Errors in words a person understands: the protocol's code says what kind, the server's message and
// a bad_request's details say what exactly.

const WORDS = {
  bad_request: "That was not accepted",
  too_large: "Too large",
  unauthenticated: "You are not signed in",
  forbidden: "You are not allowed to do that here",
  not_found: "That does not exist (any more)",
  conflict: "That clashes with what already happened",
  rate_limited: "Too many requests: slow down a little",
  timeout: "The server took too long to answer",
  unavailable: "The server is not available right now",
  internal: "Something went wrong on the server",
};

export function describe(error) {
  if (!error?.code) return `Something went wrong in this page: ${error?.message ?? error}`;
  const words = WORDS[error.code] ?? "The server refused";
  const details = Object.entries(error.details ?? {}).map(([path, reason]) => {
    const field = path.replace(/^data\./, "");
    return reason.includes(field) ? reason : `${field}: ${reason}`; // reasons often name their field
  });
  const why = details.length ? details.join("; ") : error.message;
  return why && why !== error.code ? `${words}: ${why}.` : `${words}.`;
}
