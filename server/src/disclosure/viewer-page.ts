/**
 * The formal-record page for people: the record's stages, consents, excerpts with their times
 * and withheld items, verified in the browser by the SDK itself (nothing is taken on the relay's
 * word), anchored in the channel fingerprint the reader pins in the URL fragment
 * (`#fingerprint=<f>`, never sent to any server). `?log=<url>` verifies a log from elsewhere.
 * No inline script (strict CSP): the logic is in `/sdk/viewer.js`, served beside the SDK bundle.
 */
export function viewerPage(channel: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Formal record — Backchannel</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  h1 { font-size: 1.4rem; } code { font-size: .85em; word-break: break-all; }
  #status { padding: .6rem 1rem; border-radius: .4rem; font-weight: 600; }
  #status.valid { background: #e3f6e5; color: #14532d; } #status.invalid { background: #fde2e1; color: #7f1d1d; } #status.pending { background: #eee; } #status.unanchored { background: #fff4d6; color: #713f12; }
  article { border: 1px solid #ddd; border-radius: .4rem; padding: .8rem 1rem; margin: 1rem 0; }
  .withheld { color: #777; font-style: italic; } .meta { color: #555; font-size: .9em; }
</style>
</head>
<body data-channel="${channel}">
<h1>Formal record of channel <code>${channel}</code></h1>
<p id="status" class="pending">Verifying…</p>
<div id="records"></div>
<script type="module" src="/sdk/viewer.js"></script>
</body>
</html>`;
}

/** The page's script: fetch the log, verify it with the SDK, render what it proves or why not. */
export const VIEWER_SCRIPT = `import { verifyLog } from '/sdk/backchannel.js';
const channel = document.body.dataset.channel;
const params = new URLSearchParams(location.search);
const source = params.get('log') ?? '/v1/formal/' + channel;
const fingerprint = new URLSearchParams(location.hash.slice(1)).get('fingerprint');
const status = document.getElementById('status');
const list = document.getElementById('records');
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const when = (ms) => new Date(ms).toISOString();
try {
  if (!fingerprint) {
    status.className = 'unanchored';
    status.textContent = 'Not verified: add #fingerprint=<the channel fingerprint, from a party> to this page’s address. Without it nothing proves who the parties were, so nothing was checked.';
    throw undefined;
  }
  const log = await (await fetch(source)).json();
  const result = await verifyLog(log, { fingerprint });
  if (result.ok) {
    status.className = 'valid';
    status.textContent = 'Valid against fingerprint ' + fingerprint + ': ' + result.records.length + ' record(s). Checked: the channel’s signed group log from its genesis, that each record’s parties are exactly the parties of its group state and every one consented, each opening against its commitment, the hash chain and the relay’s signature. Not checked: that the relay key is the one you expect (it is the log’s own), or that this is the whole log (compare with other observers).';
    for (const r of result.records) {
      const a = el('article');
      a.append(el('h2', '', '#' + r.index + ' — ' + (r.kind === 'communique' ? 'Communiqué' : 'Excerpt')));
      a.append(el('p', 'meta', 'Published ' + when(r.publishedAt) + (r.releaseAt ? ' (embargoed until ' + when(r.releaseAt) + ')' : '') + ' · consented by ' + r.consentingKeys.length + ' part' + (r.consentingKeys.length === 1 ? 'y' : 'ies')));
      if (r.text !== undefined) a.append(el('blockquote', '', r.text));
      for (const o of r.opened) a.append(el('p', '', 'seq ' + o.seq + ' · received ' + when(o.receivedAt) + ' · “' + (o.text ?? '(binary)') + '”'));
      for (const w of r.withheld) a.append(el('p', 'withheld', 'seq ' + w.seq + ' · received ' + when(w.receivedAt) + ' · withheld'));
      const keysList = el('p', 'meta'); keysList.append('Consenting keys: ', ...r.consentingKeys.map((k) => el('code', '', k + ' ')));
      a.append(keysList);
      list.append(a);
    }
  } else {
    status.className = 'invalid';
    status.textContent = 'Invalid: record ' + result.index + ': ' + result.reason;
  }
} catch (err) {
  if (err !== undefined) {
    status.className = 'invalid';
    status.textContent = 'Invalid: could not read the log (' + err + ')';
  }
}
document.body.dataset.verified = status.className;
`;
