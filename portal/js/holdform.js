// Placing a legal hold on chosen recordings (by id): from a recording's page, or from selected search results.
// The API refuses ids it does not know (nothing is placed then); a release still takes two officers.
import { apiJson, enc } from "./api.js";
import { el, showError, status } from "./ui.js";

// `ids()` says which recordings the hold is for at the moment the form is submitted; `onPlaced(result)` is told.
export function holdOnRecordingsForm(prefix, ids, title, onPlaced = null) {
  const matter = el("input", { id: `${prefix}-matter`, name: "matterId", required: true, maxLength: 128 });
  const description = el("input", { id: `${prefix}-description`, name: "description", required: true, maxLength: 2000 });
  const button = el("button", { id: `${prefix}-place`, type: "submit" }, "Place hold");
  const said = status(`${prefix}-status`);
  const form = el("form", { id: `${prefix}-form`, class: "stack", "aria-labelledby": `${prefix}-title` },
    el("h2", { id: `${prefix}-title` }, title),
    el("label", { for: matter.id }, "Matter"), matter,
    el("label", { for: description.id }, "Description"), description,
    el("div", { class: "actions" }, button), said);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const recordingIds = ids();
    if (!recordingIds.length) {
      said.textContent = "Choose at least one recording first.";
      return;
    }
    button.disabled = true;
    try {
      const result = await apiJson("/holds", { method: "POST", body: { matterId: matter.value.trim(), description: description.value.trim(), recordingIds } });
      const held = result.application ? result.application.held.length : 0;
      said.replaceChildren(`Hold ${result.hold.matterId} placed on ${held} recording${held === 1 ? "" : "s"}: `, el("a", { id: `${prefix}-link`, href: `#/holds/${enc(result.hold.id)}` }, "open the hold"), ".");
      if (onPlaced) onPlaced(result);
    } catch (error) {
      said.textContent = "";
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
