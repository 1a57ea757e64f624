// Partita dashboard: live refresh of the server-rendered page. Changes arrive as server-sent events
// (the cluster's job events, at most one push a second); without them the page polls. Nothing runs
// while the tab is hidden. The pages work without this script: it only keeps them current.
(function () {
  'use strict';
  var body = document.body;
  var base = body.dataset.base || '';
  var status = document.getElementById('live-status');
  var prefix = status ? status.textContent : '';
  var source = null;
  var pollTimer = null;
  var refreshing = false;
  var again = false;
  var whenCurrent = [];
  var POLL_MS = 5000;

  function setStatus(text) {
    if (status) status.textContent = prefix + text;
    body.dataset.liveState = text;
  }

  // A refresh would wipe what the person is doing: a selection, or typing in a field.
  function canRefresh() {
    if (body.dataset.live !== 'on') return false;
    if (document.querySelector('input[name=ids]:checked')) return false;
    var a = document.activeElement;
    return !(a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA' || a.tagName === 'SELECT'));
  }

  // done (optional) runs once the page shows what the server holds now, or at once when it cannot refresh.
  function refresh(done) {
    if (typeof done === 'function') whenCurrent.push(done);
    if (document.hidden || !canRefresh()) return settled();
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' })
      .then(function (r) {
        return r.ok ? r.text() : null;
      })
      .then(function (text) {
        if (!text || !canRefresh()) return;
        var next = new DOMParser().parseFromString(text, 'text/html').getElementById('main');
        var main = document.getElementById('main');
        if (next && main) {
          var focused = focusOf(main);
          main.innerHTML = next.innerHTML;
          refocus(main, focused);
          body.dataset.updated = String(Date.now());
        }
      })
      .catch(function () {})
      .then(function () {
        refreshing = false;
        if (again) {
          again = false;
          refresh();
        } else settled();
      });
  }

  // A refresh replaces the content, and with it the link or button a keyboard user had reached: the
  // same one (same tag and href, else the same place among its kind) gets the focus back, so the next
  // Enter or Tab goes where it would have.
  function focusOf(main) {
    var a = document.activeElement;
    if (!a || a === body || !main.contains(a)) return null;
    var all = main.getElementsByTagName(a.tagName);
    return { tag: a.tagName, href: a.getAttribute('href'), index: Array.prototype.indexOf.call(all, a) };
  }

  function refocus(main, focused) {
    if (!focused) return;
    var all = main.getElementsByTagName(focused.tag);
    var el = null;
    for (var i = 0; focused.href !== null && i < all.length && !el; i++) if (all[i].getAttribute('href') === focused.href) el = all[i];
    el = el || all[focused.index];
    if (el) el.focus({ preventScroll: true });
  }

  function settled() {
    var callbacks = whenCurrent;
    whenCurrent = [];
    for (var i = 0; i < callbacks.length; i++) callbacks[i]();
  }

  function poll() {
    if (pollTimer) return;
    pollTimer = setInterval(refresh, POLL_MS);
  }

  function stopPoll() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (source || document.hidden) return;
    if (!window.EventSource) {
      setStatus('polling');
      poll();
      return;
    }
    source = new EventSource(base + '/events');
    source.addEventListener('hello', function (e) {
      var hello = JSON.parse(e.data);
      if (hello.live) {
        stopPoll();
        // The page was rendered before this stream opened (or while it was down): a change in that
        // gap sent its event to nobody, so catch up once, then call the page live.
        refresh(function () {
          setStatus('live');
        });
      } else {
        setStatus('polling');
        poll();
      }
    });
    source.addEventListener('change', function () {
      refresh();
    });
    source.onerror = function () {
      // EventSource reconnects by itself; poll meanwhile.
      setStatus('reconnecting');
      poll();
    };
  }

  function disconnect() {
    if (source) source.close();
    source = null;
    stopPoll();
  }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      disconnect();
      setStatus('paused');
    } else {
      connect();
      refresh();
    }
  });

  document.addEventListener('submit', function (e) {
    var button = e.submitter;
    var message = (button && button.dataset.confirm) || e.target.dataset.confirm;
    if (message && !window.confirm(message)) e.preventDefault();
  });

  document.addEventListener('change', function (e) {
    if (e.target && e.target.id === 'select-all') {
      var boxes = document.querySelectorAll('input[name=ids]');
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = e.target.checked;
    }
  });

  connect();
})();
