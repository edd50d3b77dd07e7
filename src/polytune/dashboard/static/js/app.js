// The page router: the part of the URL after '#' names the view (#/jobs, #/jobs/<id>,
// #/files, #/models, #/evals, #/evals/<id>, #/evals/<id>/runs/<run id>, #/signin), so the
// server only ever serves one page.

import { organization, session } from "./api.js";
import { errorBox } from "./dom.js";
import { compareView } from "./views/compare.js";
import { evalsView, evalView, runView } from "./views/evals.js";
import { filesView } from "./views/files.js";
import { jobView } from "./views/job.js";
import { newJobView } from "./views/new_job.js";
import { jobsView } from "./views/jobs.js";
import { modelsView } from "./views/models.js";
import { signInView } from "./views/signin.js";

const ROUTES = [
  [/^\/jobs\/new$/, "new", newJobView],
  [/^\/jobs\/([^/]+)$/, "jobs", jobView],
  [/^\/compare$/, "jobs", compareView],
  [/^\/jobs$/, "jobs", jobsView],
  [/^\/evals\/([^/]+)\/runs\/([^/]+)$/, "evals", runView],
  [/^\/evals\/([^/]+)$/, "evals", evalView],
  [/^\/evals$/, "evals", evalsView],
  [/^\/files$/, "files", filesView],
  [/^\/models$/, "models", modelsView],
  [/^\/signin$/, "signin", signInView],
];

// What the current view needs to stop (its polling timers) when another one is shown.
let current = null;

// A view's lifetime: `alive` turns false when the user leaves it; `every` polls while alive.
class ViewContext {
  constructor() {
    this.alive = true;
    this.timers = [];
    this.cleanups = [];
  }

  every(ms, fn) {
    const tick = async () => {
      if (!this.alive) return;
      try { await fn(); } catch (err) { this.fail(err); }
      if (this.alive) this.timers.push(setTimeout(tick, ms));
    };
    this.timers.push(setTimeout(tick, ms));
  }

  onStop(fn) { this.cleanups.push(fn); }

  fail(err) { if (this.alive) handleError(err); }

  stop() {
    this.alive = false;
    this.timers.forEach(clearTimeout);
    this.cleanups.forEach((fn) => fn());
  }
}

function parseHash() {
  const raw = decodeURIComponent(location.hash.replace(/^#/, "")) || "/jobs";
  const [path, search] = raw.split("?");
  return { path, params: new URLSearchParams(search || "") };
}

function handleError(err) {
  if (err && err.status === 401) {
    session.signOut();
    location.hash = "#/signin";
    return;
  }
  const view = document.getElementById("view");
  view.prepend(errorBox(err));
}

async function route() {
  if (current) current.stop();
  const { path, params } = parseHash();
  if (!session.key && path !== "/signin") {
    location.hash = "#/signin";
    return;
  }
  const found = ROUTES.map(([re, page, view]) => [path.match(re), page, view]).find(([m]) => m);
  const view = document.getElementById("view");
  view.replaceChildren();
  // The sign-in page shows no navigation: none of it works without a key.
  const signedIn = Boolean(session.key) && path !== "/signin";
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  showOrganization(signedIn);
  if (!found) {
    view.append(errorBox(`No page at ${path}.`));
    return;
  }
  const [match, page, render] = found;
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  document.body.dataset.page = page;
  const ctx = new ViewContext();
  current = ctx;
  try {
    await render(view, { args: match.slice(1), params, ctx });
  } catch (err) {
    handleError(err);
  }
}

// Which organization the key signs in to, by name, beside "Sign out".
function showOrganization(signedIn) {
  const slot = document.getElementById("org-name");
  slot.hidden = !signedIn;
  if (!signedIn) return;
  organization().then((org) => { slot.textContent = org.name; slot.title = org.id; }, () => {});
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
route();
