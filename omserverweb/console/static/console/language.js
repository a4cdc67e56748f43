// The language selector in the top bar sends its form as soon as a language is picked.
// Here, not in an onchange attribute: the Content-Security-Policy runs no inline code.
const selector = document.querySelector("form.lang select");
selector?.addEventListener("change", () => selector.form.submit());
