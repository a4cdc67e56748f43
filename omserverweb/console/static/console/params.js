// Renders a module's parameter schema as a form and validates it in the browser.
// The server validates again: this only spares a round trip.

function inputFor(field) {
  let input;
  if (field.type === "choice") {
    input = document.createElement("select");
    if (!field.required) input.append(new Option("", ""));
    for (const choice of field.choices ?? []) input.append(new Option(String(choice), String(choice)));
  } else if (field.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(field.default);
    return input;
  } else {
    input = document.createElement("input");
    input.type = field.sensitive ? "password" : field.type === "int" ? "number" : "text";
    if (field.type === "int") {
      input.step = "1";
      if (field.min !== undefined && field.min !== null) input.min = field.min;
      if (field.max !== undefined && field.max !== null) input.max = field.max;
    }
    if (field.pattern) input.pattern = field.pattern;
  }
  if (field.default !== undefined && field.default !== null) input.value = String(field.default);
  input.required = Boolean(field.required);
  return input;
}

export function renderParamForm(form, schema) {
  form.replaceChildren();
  const inputs = new Map();
  for (const field of schema ?? []) {
    const label = document.createElement("label");
    label.className = "param";
    const name = document.createElement("span");
    name.textContent = field.label || field.name;
    const input = inputFor(field);
    input.name = field.name;
    input.dataset.type = field.type;
    const help = document.createElement("small");
    help.textContent = field.help ?? "";
    const error = document.createElement("small");
    error.className = "error";
    label.append(name, input, help, error);
    form.append(label);
    inputs.set(field.name, { field, input, error });
  }
  return {
    read() {
      const values = {};
      let ok = true;
      for (const [key, { field, input, error }] of inputs) {
        error.textContent = "";
        if (field.type === "bool") {
          values[key] = input.checked;
          continue;
        }
        if (!input.checkValidity()) {
          error.textContent = input.validationMessage;
          ok = false;
          continue;
        }
        if (input.value === "") continue;
        values[key] = field.type === "int" ? Number(input.value) : input.value;
      }
      return ok ? values : null;
    },
    showErrors(errors) {
      for (const [key, message] of Object.entries(errors ?? {})) {
        const entry = inputs.get(key.replace(/^params\./, ""));
        if (entry) entry.error.textContent = [].concat(message).join(" ");
      }
    },
    describe(values) {
      return [...inputs.values()]
        .map(({ field }) => `${field.name}=${field.sensitive ? "********" : values[field.name] ?? ""}`)
        .join(" ");
    },
  };
}
