#!/usr/bin/env node
/*
 * web_check.js — real Chromium against a real syncqd, for
 * tests/integration/web_auto_sync.sh. Debian's /usr/bin/chromium, headless,
 * driven by playwright-core (tests/browser/package.json; no browser
 * download).
 *
 *   node web_check.js autosync     a page of another origin with auto_sync.js
 *   node web_check.js statuspage   syncqd's GET /, and a hub's page
 *
 * Environment: SYNCQD_URL (http://127.0.0.1:PORT, syncqd --control),
 * PAGE_URL (the app page, on another port), OUT (where screenshots go),
 * NODE_ID, EASTERN_DATE (what the status page must show), HUB_PAGE_URL
 * (statuspage: a hub status rendered by tests/tools/statuspage_render),
 * CHROMIUM (default /usr/bin/chromium).
 *
 * Prints "# ..." notes; on a failed check, "FAIL: ..." and exit 1.
 */
'use strict';

const { chromium } = require('playwright-core');
const path = require('path');

const env = (k, d) => {
	const v = process.env[k] || d;
	if (v === undefined)
		throw new Error(`${k} is not set`);
	return v;
};
const SYNCQD_URL = env('SYNCQD_URL');
const TRIGGER = `${SYNCQD_URL}/api/sync/trigger`;
const COOLDOWN_MS = 5000;
const NOTICE_MS = 3000;

const note = (m) => console.log(`# ${m}`);
class CheckFailed extends Error {}
const check = (ok, what) => {
	if (!ok)
		throw new CheckFailed(what);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = (t) => sleep(Math.max(0, t - Date.now()));

async function launch() {
	const args = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync',
		'--disable-background-networking', '--disable-component-update'];
	if (process.getuid && process.getuid() === 0)
		args.push('--no-sandbox');	/* Chromium's sandbox refuses root */
	return chromium.launch({ executablePath: env('CHROMIUM', '/usr/bin/chromium'), headless: true, args });
}

/* In the page, before its scripts: when it loaded, and each change of the notice. */
function recorder() {
	window.__loadAt = 0;
	window.__notice = [];
	window.addEventListener('load', () => { window.__loadAt = Date.now(); });
	const seen = new WeakSet();
	new MutationObserver((muts) => {
		for (const m of muts) {
			for (const n of m.addedNodes) {
				if (n.id === 'syncq-notice') {
					seen.add(n);
					const r = n.getBoundingClientRect();
					window.__notice.push({ t: Date.now(), what: 'added', text: n.textContent,
						box: { left: r.left, top: r.top, right: r.right, bottom: r.bottom,
							vw: window.innerWidth, vh: window.innerHeight } });
				} else if (n.parentNode && n.parentNode.id === 'syncq-notice')
					window.__notice.push({ t: Date.now(), what: 'text', text: n.parentNode.textContent });
			}
			for (const n of m.removedNodes)
				if (n.id === 'syncq-notice')
					window.__notice.push({ t: Date.now(), what: 'removed' });
			if (m.type === 'characterData' && m.target.parentNode && m.target.parentNode.id === 'syncq-notice')
				window.__notice.push({ t: Date.now(), what: 'text', text: m.target.parentNode.textContent });
		}
	}).observe(document, { childList: true, subtree: true, characterData: true });
}

async function autosync(browser) {
	const context = await browser.newContext();
	const page = await context.newPage();
	const posts = [];			/* auto_sync.js's requests to the trigger */
	const problems = [];		/* script errors, console output */

	await context.addInitScript(recorder);
	page.on('request', (r) => {
		if (r.url() === TRIGGER && r.method() === 'POST')
			posts.push({ t: Date.now(), req: r, status: null });
	});
	page.on('response', (r) => {
		const p = posts.find((x) => x.req === r.request());
		if (p)
			p.status = r.status();
	});
	page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
	page.on('console', (m) => {
		/* Chromium's own line for a 4xx answer is not the script's */
		if (!/^Failed to load resource/.test(m.text()))
			problems.push(`console.${m.type()}: ${m.text()}`);
	});
	const statuses = () => posts.map((p) => p.status).join(',');
	const notices = () => page.evaluate(() => window.__notice);
	const settle = async (n, ms) => {	/* wait for n requests answered */
		const end = Date.now() + ms;
		while (Date.now() < end && !(posts.length >= n && posts.slice(0, n).every((p) => p.status !== null)))
			await sleep(20);
	};

	note('load: one request about 1 s after the load event, and the notice for about 3 s');
	const resp = await page.goto(env('PAGE_URL'));
	check(resp.ok(), `the test page: HTTP ${resp.status()}`);
	await page.waitForFunction(() => window.__notice.some((e) => e.what === 'removed'), null,
		{ timeout: 1000 + 2000 + NOTICE_MS + 2000 });
	await settle(1, 1000);
	const loadAt = await page.evaluate(() => window.__loadAt);
	check(posts.length === 1, `requests after load: ${posts.length}, expected 1`);
	check(posts[0].status === 202, `the first request was answered ${posts[0].status}, expected 202`);
	const delay = posts[0].t - loadAt;
	note(`  request ${delay} ms after the load event`);
	check(delay >= 900 && delay <= 2000, `the first request came ${delay} ms after load, expected about 1000`);
	let n = await notices();
	const added = n.find((e) => e.what === 'added');
	const removed = n.find((e) => e.what === 'removed');
	check(added && added.text === 'Syncing\u2026', `the notice first said ${JSON.stringify(added && added.text)}`);
	check(n.some((e) => e.what === 'text' && e.text === 'Synced'), `the notice never said "Synced": ${JSON.stringify(n)}`);
	const shown = removed.t - added.t;
	note(`  notice shown ${added.t - posts[0].t} ms after the request, for ${shown} ms: ${n.map((e) => e.text || e.what).join(' / ')}`);
	check(shown >= NOTICE_MS - 300 && shown <= NOTICE_MS + 600, `the notice stayed ${shown} ms, expected about ${NOTICE_MS}`);
	const b = added.box;
	note(`  notice box ${Math.round(b.right - b.left)}x${Math.round(b.bottom - b.top)} at ${Math.round(b.left)},${Math.round(b.top)} of ${b.vw}x${b.vh}`);
	check(b.right - b.left < 200 && b.bottom - b.top < 40 && b.vw - b.right < 40 && b.vh - b.bottom < 40,
		`the notice is not small and in the bottom right corner: ${JSON.stringify(b)}`);
	check(await page.$('#syncq-notice') === null, 'the notice is still in the page');

	note('within the cooldown: offline and online again, focus, visibilitychange: no request');
	await context.setOffline(true);
	check(await page.evaluate(() => navigator.onLine) === false, 'navigator.onLine is not false when offline');
	await context.setOffline(false);
	await page.evaluate(() => {
		window.dispatchEvent(new Event('focus'));
		document.dispatchEvent(new Event('visibilitychange'));
	});
	await sleep(400);
	const within = Date.now() - posts[0].t;
	check(within < COOLDOWN_MS, `the events came ${within} ms after the first request, not within the cooldown (test too slow)`);
	check(posts.length === 1, `requests within the cooldown: ${posts.length - 1}, expected none`);
	note(`  none, ${within} ms after the first`);

	note('offline past the cooldown (focus then: no request), then online: one request');
	await context.setOffline(true);
	await until(posts[0].t + COOLDOWN_MS + 500);
	await page.evaluate(() => window.dispatchEvent(new Event('focus')));
	await sleep(300);
	check(posts.length === 1, `a request while offline: ${posts.length - 1}`);
	const onlineAt = Date.now();
	await context.setOffline(false);
	await settle(2, 2000);
	check(posts.length === 2, `requests after coming online: ${posts.length - 1}, expected 1 (${statuses()})`);
	check(posts[1].status === 202, `the request after coming online was answered ${posts[1].status}, expected 202`);
	note(`  request ${posts[1].t - onlineAt} ms after coming online, answered ${posts[1].status}`);
	await page.waitForFunction(() => window.__notice.filter((e) => e.what === 'removed').length === 2, null,
		{ timeout: NOTICE_MS + 2000 });
	n = await notices();
	check(n.filter((e) => e.what === 'added').length === 2, `notices: ${JSON.stringify(n)}`);

	note('a request syncqd turns down (429): no notice, nothing said');
	await until(posts[1].t + COOLDOWN_MS + 300);
	const r = await fetch(TRIGGER, { method: 'POST' });	/* someone else's sync request */
	check(r.status === 202, `the test's own trigger: ${r.status}`);
	check(r.headers.get('access-control-allow-origin') !== '*', 'Access-Control-Allow-Origin: * on the trigger (any page could read it)');
	await page.evaluate(() => window.dispatchEvent(new Event('focus')));
	await settle(3, 2000);
	check(posts.length === 3, `requests after focus: ${posts.length - 2}, expected 1`);
	check(posts[2].status === 429, `the page's request was answered ${posts[2].status}, expected 429`);
	await sleep(1500);
	n = await notices();
	check(n.filter((e) => e.what === 'added').length === 2, `a notice for a 429: ${JSON.stringify(n.slice(-3))}`);
	note(`  answered 429, no notice`);
	const mine = posts.map((p) => p.status);

	note('CORS: a preflighted POST from the page (Content-Type: application/json) is readable');
	const pre = await page.evaluate(async (url) => {
		try {
			const x = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
			return x.status;
		} catch (e) {
			return `error: ${e.message}`;
		}
	}, TRIGGER);
	check(pre === 202 || pre === 429, `the preflighted POST: ${pre}`);
	note(`  answered ${pre}`);

	check(problems.length === 0, `the page said something: ${problems.join(' | ')}`);
	note(`auto_sync.js: ${mine.length} requests (${mine.join(',')}), no error, no console output`);
	/* the requests syncqd accepted: auto_sync.js's, the test's own, the preflighted one */
	note(`accepted: ${mine.filter((x) => x === 202).length + 1 + (pre === 202 ? 1 : 0)}`);
	await context.close();
}

async function statuspage(browser) {
	const out = env('OUT');
	const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
	const page = await context.newPage();
	const requests = [];

	page.on('request', (r) => requests.push(r.url()));
	note('the client status page, GET /');
	const resp = await page.goto(`${SYNCQD_URL}/`);
	check(resp.status() === 200, `GET /: ${resp.status()}`);
	check(resp.headers()['content-type'] === 'text/html; charset=utf-8', `Content-Type: ${resp.headers()['content-type']}`);
	check(await page.getAttribute('meta[http-equiv="refresh"]', 'content') === '5', 'no refresh every 5 s');
	const text = await page.innerText('body');
	const want = ['client', env('NODE_ID'), 'Last sync', 'OK', 'Lag', 'Queue', 'Queue depth per table',
		'lazy', 'Errors', 'Recent errors', 'check constraint "qty<ok>"', 'Conflicts', 'Recent conflicts',
		'America/New_York', `Eastern date ${env('EASTERN_DATE')}`, 'State', 'idle'];
	/* innerText as shown: headings are in capitals */
	for (const w of want)
		check(text.toLowerCase().includes(w.toLowerCase()), `the status page does not show "${w}":\n${text}`);
	check(await page.$('ok') === null, 'an error message became markup (<ok>): not escaped');
	check(await page.textContent('#role') === 'client', 'role');
	check(await page.textContent('#node-id') === env('NODE_ID'), 'node id');
	const big = await page.$$eval('.card', (cs) => cs.map((c) => c.innerText.replace(/\s+/g, ' ')));
	note(`  cards: ${big.join(' | ')}`);
	const queue = await page.$$eval('section table tr', (rs) => rs.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));
	check(queue.some((r) => /^lazy\b.*\b3 3$/.test(r)), `the queue table: ${JSON.stringify(queue)}`);
	await page.screenshot({ path: path.join(out, 'status-client.png'), fullPage: true });
	check(requests.length === 1, `the page loaded more than itself: ${requests.join(' ')}`);
	note(`  screenshot ${path.join(out, 'status-client.png')}`);

	note('a hub status, rendered by statuspage.c');
	await page.goto(env('HUB_PAGE_URL'));
	const hubText = await page.innerText('body');
	for (const w of ['hub', 'Last client sync', 'Lag', 'the slowest client', 'Queue depth per table', 'Clients',
		'Recent errors', 'boom <b>bold</b>', 'Recent conflicts', 'Requests', 'America/New_York'])
		check(hubText.toLowerCase().includes(w.toLowerCase()), `the hub page does not show "${w}":\n${hubText}`);
	check(await page.$('b') === null, 'an error message became markup (<b>): not escaped');
	await page.screenshot({ path: path.join(out, 'status-hub.png'), fullPage: true });
	note(`  screenshot ${path.join(out, 'status-hub.png')}`);
	await context.close();
}

(async () => {
	const what = process.argv[2];
	const run = { autosync, statuspage }[what];
	if (!run)
		throw new Error('usage: web_check.js autosync|statuspage');
	const browser = await launch();
	try {
		await run(browser);
	} finally {
		await browser.close();
	}
})().catch((e) => {
	console.log(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack || e}`);
	process.exit(1);
});
