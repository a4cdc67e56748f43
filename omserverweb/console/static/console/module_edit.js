// Live preview of a module's parameter form while its schema is edited.
import { renderParamForm } from "./params.js";

const source = document.querySelector("[name=params_schema]");
const preview = document.getElementById("schema-preview");
const error = document.getElementById("schema-error");

function refresh() {
  try {
    const schema = JSON.parse(source.value || "[]");
    if (!Array.isArray(schema)) throw new Error("the schema is a JSON list of fields");
    renderParamForm(preview, schema);
    error.textContent = "";
  } catch (exc) {
    error.textContent = exc.message;
  }
}

source.addEventListener("input", refresh);
refresh();
