// The nshub console: Storage, Executors and Tokens, over the public /v1 API.
// Routes live in the URL fragment (#/storage/alice/fashion_mnist); the token never does.
import * as api from "./api.js";
import { alertBox, announce, badge, clear, field, formatDate, formatSize, h, snippet, table } from "./dom.js";

const main = document.getElementById("main");

const KINDS = {
  storage: { path: "arrays", noun: "array", plural: "arrays", title: "Storage" },
  executors: { path: "executors", noun: "executor", plural: "executors", title: "Executors" },
};
const PAGE_SIZES = [10, 25, 50, 100];
let pageSize = 25;
let renderTicket = 0;
let afterSignIn = null;
let firstRender = true;

// ------------------------------------------------------------------ routing

function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  return raw.split("/").filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
}

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function hashFor(tab, ns, name) {
  return ["#", tab, ns, name].filter((p) => p !== undefined).map((p, i) => (i < 2 ? p : encodeURIComponent(p))).join("/");
}

async function render() {
  const ticket = ++renderTicket;
  const alive = () => ticket === renderTicket;
  const [tab, ns, name, ...extra] = route();
  updateChrome(tab);
  const view = h("div", { class: "view" });
  clear(main).appendChild(view);
  try {
    if (!tab) go(api.session() ? "#/storage" : "#/signin");
    else if (tab === "signin") signInView(view);
    else if (tab === "signup") signUpView(view);
    else if (tab === "confirm") view.append(...confirmForm());
    else if (KINDS[tab] && name !== undefined && extra.length === 0) await detailView(view, tab, ns, name, alive);
    else if (KINDS[tab] && extra.length === 0) await listView(view, tab, ns, alive);
    else if (tab === "tokens" && ns === undefined) await tokensView(view, alive);
    else notFoundView(view);
  } catch (err) {
    if (alive()) view.appendChild(problem(err));
  }
  if (alive()) focusHeading(view);
}

function focusHeading(view) {
  const heading = view.querySelector("h1");
  if (heading && !firstRender) heading.focus();
  firstRender = false;
}

function updateChrome(tab) {
  for (const link of document.querySelectorAll("#tabs a")) {
    if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const account = clear(document.getElementById("account"));
  const who = api.session();
  if (who) {
    account.append(
      h("span", { class: "who" }, "Signed in as ", h("strong", null, who.username)),
      h("button", { type: "button", class: "quiet", onclick: signOut }, "Sign out"));
  } else {
    account.append(h("a", { href: "#/signin" }, "Sign in"), h("a", { href: "#/signup", class: "button" }, "Sign up"));
  }
}

function signOut() {
  api.forgetSession();
  announce("Signed out");
  go("#/signin");
}

function heading(text, ...more) {
  return h("h1", { tabindex: "-1" }, text, ...more);
}

// ------------------------------------------------------------------ errors and prompts

// A failure, in one line that says what to do; a lapsed session also offers to sign in.
function problem(err, notFoundText) {
  if (!(err instanceof api.ApiError)) {
    return alertBox(`Something went wrong in the console: ${err && err.message}. Reload the page and try again.`);
  }
  if (err.status === 401) {
    updateChrome(route()[0]);
    afterSignIn = location.hash;
    return alertBox("You are not signed in, or your session has ended: sign in again to continue.",
      h("p", null, h("a", { href: "#/signin" }, "Sign in")));
  }
  if (err.status === 404 && notFoundText) {
    return alertBox(notFoundText, api.session() ? null
      : h("p", null, "If it is yours, ", h("a", { href: "#/signin", onclick: rememberPlace }, "sign in"), " first."));
  }
  return alertBox(err.message, h("p", { class: "code" }, `Error code: ${err.code}`));
}

function rememberPlace() {
  afterSignIn = location.hash;
}

function signInPrompt(view, what) {
  view.append(h("p", { class: "lead" }, `Sign in to see ${what}. `,
    h("a", { href: "#/signin", onclick: rememberPlace }, "Sign in"), " or ",
    h("a", { href: "#/signup" }, "create an account"), "."));
}

function notFoundView(view) {
  view.append(heading("Page not found"),
    alertBox("This console has no such page.", h("p", null, h("a", { href: "#/storage" }, "Go to Storage"))));
}

function busy(button, text) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = text;
  return () => {
    button.disabled = false;
    button.textContent = label;
  };
}

// ------------------------------------------------------------------ sign in, sign up

function signInView(view) {
  if (api.session()) {
    view.append(heading("Signed in"), h("p", null, `You are signed in as ${api.session().username}. `,
      h("a", { href: "#/storage" }, "Go to Storage"), "."));
    return;
  }
  const username = h("input", { id: "signin-username", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    errors, field("Username", username), field("Password", password), submit,
    h("p", null, "No account yet? ", h("a", { href: "#/signup" }, "Sign up")),
    h("p", null, "Got a confirmation code by email? ", h("a", { href: "#/confirm" }, "Confirm your account")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const done = busy(submit, "Signing in…");
    try {
      const me = await api.signIn(username.value.trim().toLowerCase(), password.value);
      announce(`Signed in as ${me.username}`);
      const next = afterSignIn && !afterSignIn.startsWith("#/sign") ? afterSignIn : "#/storage";
      afterSignIn = null;
      go(next);
    } catch (err) {
      done();
      errors.append(problemForAuth(err));
      password.focus();
    }
  });
  view.append(h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in"), form);
}

function problemForAuth(err) {
  return err instanceof api.ApiError ? alertBox(err.message) : problem(err);
}

function signUpView(view) {
  const username = h("input", { id: "signup-username", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const email = h("input", { id: "signup-email", name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { id: "signup-password", name: "password", type: "password", autocomplete: "new-password", required: true });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Create account");
  const form = h("form", { class: "card narrow", "aria-labelledby": "signup-title", novalidate: true },
    errors,
    field("Username", username, "2–39 lowercase letters, digits and single hyphens. It becomes your namespace: your arrays are USERNAME/NAME."),
    field("Email", email),
    field("Password", password, "At least 8 characters, with upper and lower case letters and a digit."),
    submit,
    h("p", null, "Already have an account? ", h("a", { href: "#/signin" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const name = username.value.trim().toLowerCase();
    if (!api.isNamespace(name)) {
      errors.append(alertBox(`"${name}" cannot be a username: use 2–39 lowercase letters, digits and single hyphens.`));
      username.focus();
      return;
    }
    const done = busy(submit, "Creating…");
    try {
      const result = await api.signUp(name, email.value.trim(), password.value);
      if (result.confirmed) {
        await api.signIn(name, password.value);
        announce(`Welcome, ${name}`);
        go("#/storage");
      } else {
        clear(view).append(...confirmForm(name, password.value));
        view.querySelector("h1").focus();
      }
    } catch (err) {
      done();
      errors.append(problemForAuth(err));
    }
  });
  view.append(h("h1", { id: "signup-title", tabindex: "-1" }, "Create an account"), form);
}

// Right after sign-up the console knows the username and password; from the sign-in page
// (#/confirm) it asks for them too.
function confirmForm(name, password) {
  const username = h("input", { id: "confirm-username", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const secret = h("input", { id: "confirm-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = h("input", { id: "confirm-code", name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Confirm");
  const form = h("form", { class: "card narrow" }, errors,
    name ? h("p", null, `We sent a confirmation code to the email address of ${name}. Enter it to finish.`)
      : h("p", null, "Enter the code we sent to your email address when you signed up."),
    name ? null : field("Username", username),
    name ? null : field("Password", secret),
    field("Confirmation code", code), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    const done = busy(submit, "Confirming…");
    const who = name || username.value.trim().toLowerCase();
    try {
      await api.confirmSignUp(who, code.value.trim());
      await api.signIn(who, password || secret.value);
      announce(`Welcome, ${who}`);
      go("#/storage");
    } catch (err) {
      done();
      errors.append(problemForAuth(err));
    }
  });
  return [h("h1", { tabindex: "-1" }, "Confirm your account"), form];
}

// ------------------------------------------------------------------ storage and executors

function browseForm(tab) {
  const input = h("input", { id: "browse-ns", name: "namespace", placeholder: "alice", autocapitalize: "none", spellcheck: "false" });
  const errors = h("div");
  const form = h("form", { class: "browse", role: "search" },
    h("label", { for: "browse-ns" }, "Browse a namespace"),
    h("div", { class: "inline" }, input, h("button", { type: "submit" }, "Browse")), errors);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clear(errors);
    const [ns, name] = input.value.trim().replace(/^\/+/, "").split("/");
    if (!api.isNamespace(ns || "")) {
      errors.append(alertBox(`"${input.value.trim()}" is not a namespace: use 2–39 lowercase letters, digits and single hyphens, like alice.`));
      return;
    }
    go(hashFor(tab, ns, name || undefined));
  });
  return form;
}

function pushCommand(tab, ns) {
  return tab === "storage" ? `nshub push data.bin ${ns}/my-data` : "nshub hub push ./MyExecutor";
}

async function listView(view, tab, ns, alive) {
  const kind = KINDS[tab];
  const me = api.session();
  if (ns === undefined && !me) {
    view.append(heading(kind.title));
    signInPrompt(view, `your ${kind.plural}`);
    view.append(h("p", null, `Anyone can browse the public ${kind.plural} of a namespace:`), browseForm(tab));
    return;
  }
  ns = ns === undefined ? me.namespace : ns;
  const own = me && me.namespace === ns;
  view.append(heading(own ? `${kind.title}: your ${kind.plural}` : `${kind.title}: ${ns}`));
  if (!api.isNamespace(ns)) {
    view.append(alertBox(`"${ns}" is not a namespace: namespaces are 2–39 lowercase letters, digits and single hyphens.`), browseForm(tab));
    return;
  }
  view.append(h("p", { class: "lead" }, own
    ? `Everything in your namespace ${ns}, public and private.`
    : `The public ${kind.plural} of ${ns}. Private ones are never shown to others.`));
  view.append(browseForm(tab));
  const results = h("section", { "aria-label": `${kind.title} list` });
  view.append(results);

  const cursors = [null];
  let page = 0;
  async function load() {
    const answer = await api.call("GET", `v1/${kind.path}/${api.seg(ns)}`, { query: { limit: pageSize, cursor: cursors[page] } });
    if (!alive()) return;
    clear(results);
    if (answer.items.length === 0 && page === 0) {
      results.append(emptyState(tab, ns, own));
      return;
    }
    results.append(listTable(tab, answer.items, own ? `Your ${kind.plural}` : `Public ${kind.plural} of ${ns}`), pager(answer.next_cursor));
  }
  function pager(next) {
    const size = h("select", { id: "page-size" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === pageSize }, String(n))));
    size.addEventListener("change", () => {
      pageSize = Number(size.value);
      cursors.length = 1;
      page = 0;
      load().catch(showError);
    });
    const previous = h("button", { type: "button", disabled: page === 0 }, "Previous page");
    const following = h("button", { type: "button", disabled: !next }, "Next page");
    previous.addEventListener("click", () => { page -= 1; load().then(() => focusTable()).catch(showError); });
    following.addEventListener("click", () => {
      cursors[page + 1] = next;
      page += 1;
      load().then(() => focusTable()).catch(showError);
    });
    return h("nav", { class: "pager", "aria-label": "Pages" },
      h("span", null, `Page ${page + 1}`), previous, following,
      h("label", { for: "page-size" }, "Per page"), size);
  }
  function focusTable() {
    const first = results.querySelector("tbody a");
    if (first) first.focus();
  }
  function showError(err) {
    if (alive()) clear(results).append(problem(err));
  }
  await load();
}

function listTable(tab, items, caption) {
  const link = (info) => h("a", { href: hashFor(tab, info.namespace, info.name) }, info.full_name);
  if (tab === "storage") {
    return table(caption, ["Name", "Visibility", "Size", "Versions", "Updated"],
      items.map((info) => [link(info), badge(info.visibility), formatSize(info.size), `latest v${info.version}`, formatDate(info.updated_at)]));
  }
  return table(caption, ["Name", "Tags", "Visibility", "Versions", "Image", "Updated"],
    items.map((info) => [link(info), tagList(info.tags), badge(info.visibility), `latest v${info.version}`,
      imageStatus(info.image_status), formatDate(info.updated_at)]));
}

function tagList(tags) {
  if (!tags || tags.length === 0) return h("span", { class: "muted" }, "none");
  return h("span", { class: "tags" }, tags.map((t) => h("span", { class: "tag" }, t)));
}

function imageStatus(status) {
  return h("span", { class: `image ${status || "pending"}` }, status || "pending");
}

function emptyState(tab, ns, own) {
  const kind = KINDS[tab];
  if (!own) {
    return h("div", { class: "empty" }, h("p", null, `${ns} has no public ${kind.plural}.`),
      h("p", { class: "muted" }, "Private ones, and namespaces that do not exist, look the same from outside."));
  }
  return h("div", { class: "empty" },
    h("p", null, `You have no ${kind.plural} yet. Push one from a terminal:`),
    snippet("Client setup", `pip install nshub\nexport NSHUB_ENDPOINT=${api.apiBaseText()}\nnshub login ${ns}`),
    snippet("Push command", pushCommand(tab, ns)),
    h("p", { class: "muted" }, `It is private until you add --public or make it public here.`));
}

async function detailView(view, tab, ns, name, alive) {
  const kind = KINDS[tab];
  const base = `v1/${kind.path}/${api.seg(ns)}/${api.seg(name)}`;
  const full = `${ns}/${name}`;
  view.append(h("p", { class: "crumbs" }, h("a", { href: hashFor(tab, ns) }, `${kind.title}: ${ns}`)));
  let info;
  let firstVersions;
  try {
    // Both at once, and nothing shown until both are here: the page never jumps.
    [info, firstVersions] = await Promise.all([
      api.call("GET", base), api.call("GET", `${base}/versions`, { query: { limit: 20 } })]);
  } catch (err) {
    if (!alive()) return;
    view.append(heading(full), problem(err,
      `There is no ${kind.noun} ${full} that you can see: it does not exist, or it is private and not yours. Check the name.`));
    return;
  }
  if (!alive()) return;
  const me = api.session();
  const own = me && me.namespace === info.namespace;
  view.append(heading(info.full_name, " ", badge(info.visibility)));

  const facts = [
    ["Visibility", info.visibility], ["Latest version", `v${info.version}`],
    ["Size", `${formatSize(info.size)} (${info.size} bytes)`], ["sha256", h("code", { class: "hash" }, info.sha256)],
    ["Created", formatDate(info.created_at)], ["Updated", formatDate(info.updated_at)],
  ];
  if (tab === "executors") {
    facts.splice(2, 0, ["Tags", tagList(info.tags)], ["Image build", imageStatus(info.image_status)]);
    if (info.image) facts.push(["Image", h("code", null, info.image)]);
  }
  view.append(h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])));

  if (tab === "executors") view.append(executorUris(info));
  view.append(metadataSection(info.metadata));
  view.append(pullSection(tab, info));
  const versions = h("section", { "aria-labelledby": "versions-title" }, h("h2", { id: "versions-title" }, "Versions"));
  versionsList(versions, tab, base, firstVersions, alive);
  view.append(versions);
  if (own) view.append(manageSection(tab, info));
}

function executorUris(info) {
  const uris = [
    snippet("Source URI", `jinaai://${info.full_name}`),
    snippet("Docker image URI", `jinaai+docker://${info.full_name}`),
  ];
  for (const tag of info.tags || []) {
    if (tag !== "latest") uris.push(snippet(`Source URI, tag ${tag}`, `jinaai://${info.full_name}:${tag}`));
  }
  return h("section", { "aria-labelledby": "uris-title" }, h("h2", { id: "uris-title" }, "Use it"), uris);
}

function metadataSection(metadata) {
  const entries = Object.entries(metadata || {});
  const section = h("section", { "aria-labelledby": "metadata-title" }, h("h2", { id: "metadata-title" }, "Metadata"));
  if (entries.length === 0) {
    section.append(h("p", { class: "muted" }, "No metadata. Add some at push time: --meta key=value."));
  } else {
    section.append(table("Metadata", ["Key", "Value"],
      entries.map(([k, v]) => [k, h("span", { class: "value" }, typeof v === "string" ? v : JSON.stringify(v))])));
  }
  return section;
}

function pullSection(tab, info) {
  const full = info.full_name;
  const endpoint = api.apiBaseText();
  const section = h("section", { "aria-labelledby": "pull-title" }, h("h2", { id: "pull-title" }, "Pull it"));
  if (info.visibility === "private") {
    section.append(h("p", { class: "muted" }, "Private: pulling needs your login (nshub login) or a token from the Tokens tab (NSHUB_TOKEN)."));
  }
  section.append(snippet("Client setup", `pip install nshub\nexport NSHUB_ENDPOINT=${endpoint}`));
  if (tab === "storage") {
    section.append(
      snippet("Command line", `nshub pull ${full} -o ${info.name}.bin`),
      snippet("Python", `import nshub\nnshub.Client().pull_file("${full}", "${info.name}.bin")`),
      snippet("nshub.docarray", `from docarray import DocList\nfrom nshub.docarray import pull\ndocs = pull(DocList[MyDoc], "${full}")`),
      snippet("docarray with JINA_HUBBLE_REGISTRY",
        `export JINA_HUBBLE_REGISTRY=${endpoint}\nexport JINA_AUTH_TOKEN=nshub_...   # a token from the Tokens tab\npython -c 'from docarray import DocumentArray; print(DocumentArray.pull("${full}"))'`));
  } else {
    section.append(
      snippet("Command line", `nshub hub pull jinaai://${full}`),
      snippet("Docker image", `nshub hub pull jinaai+docker://${full} --docker-login`),
      snippet("Jina Flow", `export JINA_HUBBLE_REGISTRY=${endpoint}\nexport JINA_AUTH_TOKEN=nshub_...   # a token from the Tokens tab\npython -c 'from jina import Flow; Flow().add(uses="jinaai://${full}")'`));
  }
  return section;
}

function versionsList(section, tab, base, first, alive) {
  const body = h("div");
  section.append(body);
  let cursor = null;
  const rows = [];
  const more = h("button", { type: "button" }, "More versions");
  more.addEventListener("click", async () => {
    try {
      const answer = await api.call("GET", `${base}/versions`, { query: { limit: 20, cursor } });
      if (alive()) show(answer);
    } catch (err) {
      body.append(problem(err));
    }
  });
  function show(answer) {
    cursor = answer.next_cursor;
    for (const v of answer.items) {
      const row = [`v${v.version}`, formatSize(v.size), h("code", { class: "hash" }, v.sha256), formatDate(v.created_at)];
      if (tab === "executors") row.splice(1, 0, tagList(v.tags), imageStatus(v.image_status));
      rows.push(row);
    }
    const columns = tab === "executors"
      ? ["Version", "Tags", "Image", "Size", "sha256", "Created"]
      : ["Version", "Size", "sha256", "Created"];
    clear(body).append(table("Versions", columns, rows));
    if (cursor) body.append(more);
  }
  show(first);
}

function manageSection(tab, info) {
  const kind = KINDS[tab];
  const full = info.full_name;
  const target = info.visibility === "public" ? "private" : "public";
  const errors = h("div");
  const toggle = h("button", { type: "button" }, `Make ${target}`);
  toggle.addEventListener("click", async () => {
    clear(errors);
    const done = busy(toggle, "Saving…");
    try {
      await api.call("PATCH", `v1/${kind.path}/${api.seg(info.namespace)}/${api.seg(info.name)}`, { body: { visibility: target } });
      announce(`${full} is now ${target}`);
      render();
    } catch (err) {
      done();
      errors.append(problem(err));
    }
  });

  const typed = h("input", { id: "delete-confirm", autocomplete: "off", autocapitalize: "none", spellcheck: "false" });
  const remove = h("button", { type: "submit", class: "danger", disabled: true }, `Delete this ${kind.noun}`);
  typed.addEventListener("input", () => { remove.disabled = typed.value.trim() !== full; });
  const form = h("form", { class: "delete" },
    field(`Type ${full} to confirm`, typed, `Deleting removes ${full} and all its versions${tab === "executors" ? ", tags and images" : ""}. It cannot be undone.`),
    remove);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (typed.value.trim() !== full) return;
    clear(errors);
    const done = busy(remove, "Deleting…");
    try {
      await api.call("DELETE", `v1/${kind.path}/${api.seg(info.namespace)}/${api.seg(info.name)}`);
      announce(`Deleted ${full}`);
      go(`#/${tab}`);
    } catch (err) {
      done();
      errors.append(problem(err));
    }
  });
  return h("section", { class: "manage", "aria-labelledby": "manage-title" },
    h("h2", { id: "manage-title" }, "Manage"), errors,
    h("div", { class: "row" },
      h("p", null, info.visibility === "public"
        ? "Public: anyone can find and pull it."
        : "Private: only you can see and pull it; others get 404."), toggle),
    h("h3", null, "Delete"), form);
}

// ------------------------------------------------------------------ tokens

async function tokensView(view, alive) {
  view.append(heading("Tokens"));
  if (!api.session()) {
    signInPrompt(view, "and create your access tokens");
    return;
  }
  view.append(h("p", { class: "lead" },
    "Personal access tokens let scripts, CI and the Jina clients act as you without your password. ",
    "Use one as NSHUB_TOKEN (nshub) or JINA_AUTH_TOKEN (docarray, jina)."));
  const created = h("div");
  const listing = h("section", { "aria-labelledby": "tokens-title" }, h("h2", { id: "tokens-title" }, "Your tokens"));
  view.append(createTokenForm(created, () => loadTokens(listing, alive)), created, listing);
  await loadTokens(listing, alive);
}

function createTokenForm(created, reload) {
  const name = h("input", { id: "token-name", name: "name", required: true, maxlength: 100, autocomplete: "off", placeholder: "ci-pipeline" });
  const scope = h("select", { id: "token-scope", name: "scope" },
    h("option", { value: "read" }, "read: pull and list"),
    h("option", { value: "read write" }, "read and write: also push, change and delete"));
  const days = h("input", { id: "token-days", name: "days", type: "number", min: 1, max: 365, value: 90, required: true, inputmode: "numeric" });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Create token");
  const form = h("form", { class: "card", "aria-labelledby": "new-token-title", novalidate: true },
    h("h2", { id: "new-token-title" }, "New token"), errors,
    h("div", { class: "fields" }, field("Name", name, "What it is for, so you know what to revoke."),
      field("Scope", scope), field("Expires in (days)", days, "1 to 365.")),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    clear(created);
    const count = Number(days.value);
    if (!name.value.trim()) {
      errors.append(alertBox("Give the token a name: what it is for."));
      name.focus();
      return;
    }
    if (!Number.isInteger(count) || count < 1 || count > 365) {
      errors.append(alertBox("The expiry must be a whole number of days from 1 to 365."));
      days.focus();
      return;
    }
    const done = busy(submit, "Creating…");
    try {
      const token = await api.call("POST", "v1/tokens", { body: { name: name.value.trim(), scopes: scope.value.split(" "), expires_in_days: count } });
      done();
      name.value = "";
      showNewToken(created, token);
      await reload();
    } catch (err) {
      done();
      errors.append(problem(err));
    }
  });
  return form;
}

function showNewToken(box, token) {
  const dismiss = h("button", { type: "button" }, "I have copied it");
  dismiss.addEventListener("click", () => clear(box));
  box.append(h("section", { class: "new-token", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title", tabindex: "-1" }, `Token ${token.name} created`),
    h("p", { class: "warning" }, "Copy it now: this is the only time it is shown. Store it like a password."),
    snippet("Token", token.token, { secret: true }),
    h("p", { class: "muted" }, `Scopes: ${token.scopes.join(", ")}. Expires ${formatDate(token.expires_at)}. Use it with export NSHUB_TOKEN=… or export JINA_AUTH_TOKEN=…`),
    dismiss));
  box.querySelector("h2").focus();
}

async function loadTokens(section, alive) {
  const answer = await api.call("GET", "v1/tokens");
  if (!alive()) return;
  for (const node of [...section.children].slice(1)) node.remove();
  const items = answer.items || [];
  if (items.length === 0) {
    section.append(h("p", { class: "empty" }, "No tokens yet. Create one above for a script, CI or the Jina clients."));
    return;
  }
  const confirmBox = h("div");
  section.append(confirmBox, table("Your tokens", ["Name", "Scopes", "Created", "Expires", "Last used", "Actions"],
    items.map((t) => [t.name, (t.scopes || []).join(", "), formatDate(t.created_at), formatDate(t.expires_at),
      formatDate(t.last_used_at), revokeButton(t, confirmBox, section, alive)])));
}

function revokeButton(token, confirmBox, section, alive) {
  const button = h("button", { type: "button", class: "danger small", "aria-label": `Revoke token ${token.name}` }, "Revoke");
  button.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "danger" }, "Revoke now");
    const no = h("button", { type: "button" }, "Cancel");
    const errors = h("div");
    no.addEventListener("click", () => { clear(confirmBox); button.focus(); });
    yes.addEventListener("click", async () => {
      const done = busy(yes, "Revoking…");
      try {
        await api.call("DELETE", `v1/tokens/${api.seg(token.id)}`);
        announce(`Token ${token.name} revoked`);
        clear(confirmBox);
        await loadTokens(section, alive);
      } catch (err) {
        done();
        clear(errors).append(problem(err));
      }
    });
    clear(confirmBox).append(h("div", { class: "confirm", role: "group", "aria-label": "Confirm revoking" },
      h("p", null, `Revoke the token ${token.name}? Anything that uses it is refused from its next request on.`),
      errors, h("div", { class: "row" }, yes, no)));
    yes.focus();
  });
  return button;
}

// ------------------------------------------------------------------ start

window.addEventListener("hashchange", render);
render();
