// Small fetch wrapper for the REST API with the session's CSRF token.
const csrf = () => document.querySelector("[name=csrfmiddlewaretoken]")?.value ?? "";

export class ApiError extends Error {
  constructor(status, body) {
    super(ApiError.describe(body) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }

  static describe(body) {
    if (!body || typeof body !== "object") return "";
    if (body.detail) return String(body.detail);
    return Object.entries(body)
      .map(([field, errors]) => `${field}: ${[].concat(errors).join(" ")}`)
      .join("; ");
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(`/api/${path}`, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...(method === "GET" ? {} : { "X-CSRFToken": csrf() }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
