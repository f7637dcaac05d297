/*
 * auto_sync.js — ask syncqd for a sync from an app's pages.
 *
 *   <script src="http://127.0.0.1:8765/auto_sync.js" data-syncqd="http://127.0.0.1:8765" defer></script>
 *
 * Asks the syncqd beside this machine's database for a sync (POST
 * /api/sync/trigger) one second after the page has loaded, when the
 * browser comes back online, when the tab becomes visible again and when
 * the window gets the focus; never twice within five seconds, and only
 * while the browser thinks it is online. A sync syncqd accepted shows a
 * small notice in the bottom right corner ("Syncing…", then "Synced" once
 * the status says so) that goes away by itself after three seconds. A
 * request syncqd turns down (429: one was made less than five seconds ago)
 * or that fails shows nothing: every error is silent.
 *
 * data-syncqd on the script tag is syncqd's control address (default
 * http://127.0.0.1:8765, its --control default).
 */
(function () {
	'use strict';

	var FIRST_DELAY_MS = 1000;	/* after the page's load event */
	var COOLDOWN_MS = 5000;		/* between two requests (syncqd's own limit too) */
	var NOTICE_MS = 3000;		/* how long the notice stays */
	var STATUS_POLL_MS = 400;	/* looking for the end of the sync */
	var TIMEOUT_MS = 10000;

	try {
		if (window.__syncqAutoSync)
			return;				/* included twice */
		window.__syncqAutoSync = true;

		var script = document.currentScript ||
			document.querySelector('script[data-syncqd]');
		var base = (script && script.getAttribute('data-syncqd')) || 'http://127.0.0.1:8765';
		base = String(base).replace(/\/+$/, '');

		var started = false;	/* the first request (after load) was made */
		var last = 0;			/* when the last request was made */
		var notice = null,
			fadeTimer = 0,
			hideTimer = 0;

		/* One HTTP request; done(status, text) is called once, 0 on failure. */
		var send = function (method, path, done) {
			var called = false;
			var finish = function (status, text) {
				if (!called) {
					called = true;
					try { done(status, text); } catch (e) { /* silent */ }
				}
			};
			try {
				var x = new XMLHttpRequest();
				x.open(method, base + path, true);
				x.timeout = TIMEOUT_MS;
				x.onload = function () { finish(x.status, x.responseText); };
				x.onerror = x.ontimeout = x.onabort = function () { finish(0, ''); };
				x.send();
			} catch (e) {
				finish(0, '');
			}
		};

		var hide = function () {
			clearTimeout(fadeTimer);
			clearTimeout(hideTimer);
			if (notice && notice.parentNode)
				notice.parentNode.removeChild(notice);
			notice = null;
		};

		var show = function (text) {
			if (!document.body)
				return;
			if (!notice) {
				notice = document.createElement('div');
				notice.id = 'syncq-notice';
				notice.setAttribute('role', 'status');
				notice.setAttribute('aria-live', 'polite');
				notice.style.cssText =
					'position:fixed;right:12px;bottom:12px;z-index:2147483647;' +
					'font:12px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;' +
					'color:#fff;background:rgba(29,35,48,.82);padding:4px 10px;' +
					'border-radius:12px;pointer-events:none;opacity:1;' +
					'transition:opacity .3s;box-shadow:0 1px 4px rgba(0,0,0,.2)';
				document.body.appendChild(notice);
				fadeTimer = setTimeout(function () {
					if (notice)
						notice.style.opacity = '0';
				}, NOTICE_MS - 300);
				hideTimer = setTimeout(hide, NOTICE_MS);
			}
			notice.textContent = text;
		};

		/* After an accepted request: "Synced" once the status shows a sync ended since. */
		var watch = function (since, tries) {
			if (!notice || tries <= 0)
				return;
			setTimeout(function () {
				send('GET', '/api/sync/status', function (status, text) {
					var s = null;
					if (status === 200) {
						try { s = JSON.parse(text); } catch (e) { s = null; }
					}
					var l = s && s.last_sync;
					var at = l && l.at ? Date.parse(l.at) : NaN;
					if (l && l.ok === true && at >= since && s.state !== 'syncing')
						show('Synced');
					else if (status === 200)
						watch(since, tries - 1);
				});
			}, STATUS_POLL_MS);
		};

		var request = function () {
			try {
				var now = Date.now();
				if (!started || navigator.onLine === false)
					return;
				if (last !== 0 && now - last < COOLDOWN_MS && now >= last)
					return;
				last = now;
				send('POST', '/api/sync/trigger', function (status) {
					/* 202: a sync is under way; 429 and the rest: nothing to show */
					if (status === 202) {
						show('Syncing\u2026');
						watch(now, Math.floor((NOTICE_MS - 500) / STATUS_POLL_MS));
					}
				});
			} catch (e) {
				/* silent */
			}
		};

		var first = function () {
			setTimeout(function () {
				started = true;
				request();
			}, FIRST_DELAY_MS);
		};

		if (document.readyState === 'complete')
			first();
		else
			window.addEventListener('load', first);
		window.addEventListener('online', request);
		window.addEventListener('focus', request);
		document.addEventListener('visibilitychange', function () {
			if (document.visibilityState === 'visible')
				request();
		});
	} catch (e) {
		/* silent */
	}
})();
