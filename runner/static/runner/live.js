/* Admin pages that update themselves (see runner/admin/live.py). Plain JavaScript: no build step,
 * no library, no CDN. Without JavaScript the pages are the same pages, only still.
 *
 * - While the tab is visible, every poll_seconds: ask the page's version URL, sending the ETag the
 *   page was rendered with and its live ticket. 304: nothing changed. 200: fetch this page again
 *   and swap every [data-live-region] element by its id. A table with row checkboxes (the agents
 *   list's bulk actions) keeps its checkboxes and their selection: only the other cells change.
 *   403 (the ticket expired): fetch the page again, which brings a new ticket.
 * - Hidden tab: no requests at all; visible again: poll at once.
 * - [data-relative-to] ("in 12 min") and [data-elapsed-since] ("1:03") tick every second.
 * - [data-log-url] elements follow a run's log through GET /api/runs/{id}/log/?after=N.
 */
(function () {
  "use strict";
  var root = document.getElementById("runner-live");
  if (!root || !window.fetch || !window.DOMParser) {
    return;
  }
  var pollMs = Math.max(Number(root.dataset.pollSeconds) || 1, 0.2) * 1000;
  var etag = root.dataset.version;
  var ticket = root.dataset.ticket;
  var skew = skewOf(root.dataset.serverNow);
  var label = root.querySelector(".runner-live-text");
  var timer = null;
  var refreshing = null;
  var stopped = false;
  root.hidden = false;

  function skewOf(serverNow) {
    var t = Date.parse(serverNow);
    return isNaN(t) ? 0 : t - Date.now();
  }

  function say(message, state) {
    label.textContent = message;
    root.dataset.state = state;
  }

  function stop(message) {
    stopped = true;
    clearTimeout(timer);
    say(message, "stopped");
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // --- clocks -------------------------------------------------------------------------------

  function twoDigits(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function elapsed(ms) {
    var s = Math.max(Math.floor(ms / 1000), 0);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var clock = twoDigits(s % 60);
    return h ? h + ":" + twoDigits(m) + ":" + clock : m + ":" + clock;
  }

  function relative(ms) {
    var s = Math.round(Math.abs(ms) / 1000);
    var words;
    if (s < 60) {
      words = s + " s";
    } else if (s < 3600) {
      words = Math.floor(s / 60) + " min";
    } else if (s < 172800) {
      words = Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    } else {
      words = Math.floor(s / 86400) + " days";
    }
    return ms >= 0 ? "in " + words : words + " ago";
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-elapsed-since]").forEach(function (el) {
      el.textContent = elapsed(now - Date.parse(el.dataset.elapsedSince));
    });
    document.querySelectorAll("[data-relative-to]").forEach(function (el) {
      var words = relative(Date.parse(el.dataset.relativeTo) - now);
      el.textContent = el.textContent.charAt(0) === "(" ? "(" + words + ")" : words;
    });
  }

  // --- swapping the parts of the page that changed -------------------------------------------

  function rowKeys(table) {
    return Array.prototype.map.call(table.querySelectorAll("tbody tr"), function (row) {
      var box = row.querySelector("input.action-select");
      return box ? box.value : "";
    }).join(",");
  }

  function swapCells(region, replacement) {
    // Bulk-action checkboxes keep their state and the listeners Django's actions.js gave them.
    var table = region.querySelector("table"), fresh = replacement.querySelector("table");
    if (!table || !fresh || rowKeys(table) !== rowKeys(fresh)) {
      say("Agents were added or removed: reload the page to see them", "stale");
      return false;
    }
    var rows = table.querySelectorAll("tbody tr"), freshRows = fresh.querySelectorAll("tbody tr");
    rows.forEach(function (row, i) {
      Array.prototype.forEach.call(row.children, function (cell, j) {
        var freshCell = freshRows[i].children[j];
        if (freshCell && !cell.querySelector("input.action-select")) {
          cell.innerHTML = freshCell.innerHTML;
        }
      });
    });
    return true;
  }

  function typingIn(region) {
    var focused = document.activeElement;
    return Boolean(focused && region.contains(focused) &&
      (/^(SELECT|TEXTAREA)$/.test(focused.tagName) ||
       (focused.tagName === "INPUT" && !/^(checkbox|radio|button|submit)$/.test(focused.type))));
  }

  function swap(region, replacement) {
    if (region.querySelector("input.action-select")) {
      return swapCells(region, replacement);
    }
    if (typingIn(region)) {
      return true; // never pull an input away from someone typing in it
    }
    region.innerHTML = replacement.innerHTML;
    return true;
  }

  function refresh() {
    if (!refreshing) {
      refreshing = load().finally(function () { refreshing = null; });
    }
    return refreshing;
  }

  function load() {
    return fetch(window.location.href, {
      cache: "no-store",
      credentials: "same-origin",
      headers: {"X-Requested-With": "runner-live"}
    }).then(function (response) {
      if (!response.ok || response.redirected) {
        stop("Live updates stopped: reload the page (or log in again)");
        return null;
      }
      return response.text();
    }).then(function (html) {
      if (html === null) {
        return;
      }
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("runner-live");
      if (!fresh) {
        stop("Live updates stopped: reload the page");
        return;
      }
      etag = fresh.dataset.version;
      ticket = fresh.dataset.ticket;
      skew = skewOf(fresh.dataset.serverNow);
      var current = true;
      document.querySelectorAll("[data-live-region]").forEach(function (region) {
        var replacement = doc.getElementById(region.id);
        if (replacement) {
          current = swap(region, replacement) && current;
        }
      });
      tick();
      followLogs();
      if (current) {
        say("Live · updated " + new Date().toLocaleTimeString(), "live");
      }
    });
  }

  // --- polling --------------------------------------------------------------------------------

  function schedule() {
    clearTimeout(timer);
    if (!stopped && !document.hidden) {
      timer = setTimeout(poll, pollMs);
    }
  }

  function poll() {
    if (stopped || document.hidden) {
      return;
    }
    fetch(root.dataset.versionUrl, {
      cache: "no-store",
      credentials: "same-origin",
      headers: {"If-None-Match": etag, "X-Runner-Live-Ticket": ticket}
    }).then(function (response) {
      if (response.status === 304) {
        if (root.dataset.state !== "live" && root.dataset.state !== "stale") {
          say("Live", "live");
        }
        return null;
      }
      if (response.status === 200 || response.status === 403) {
        return refresh();
      }
      say("Live updates paused: the server answered " + response.status, "error");
      return null;
    }).catch(function () {
      say("Live updates paused: the server cannot be reached", "error");
    }).then(schedule);
  }

  document.addEventListener("visibilitychange", function () {
    if (stopped) {
      return;
    }
    if (document.hidden) {
      clearTimeout(timer);
      say("Paused while this tab is hidden", "paused");
    } else {
      poll();
    }
  });

  // --- following a run's log ------------------------------------------------------------------

  function appendLines(el, lines, keep) {
    if (!lines.length) {
      return;
    }
    var atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
    var text = lines.map(function (line) { return line.text; });
    var all = (el.textContent ? el.textContent.split("\n") : []).concat(text);
    el.textContent = (keep ? all.slice(-keep) : all).join("\n");
    if (atBottom) {
      el.scrollTop = el.scrollHeight;
    }
  }

  function follow(el) {
    el.dataset.tailing = "yes";
    var after = Number(el.dataset.after) || 0;
    var keep = Number(el.dataset.keep) || 0;
    function step() {
      if (!el.isConnected || stopped) {
        return null;
      }
      if (document.hidden) {
        return sleep(pollMs).then(step);
      }
      return fetch(el.dataset.logUrl + "?after=" + after, {
        cache: "no-store",
        credentials: "same-origin",
        headers: {"Accept": "application/json"}
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (page) {
        if (!page) {
          return null; // no permission or no such run: stop following
        }
        appendLines(el, page.lines, keep);
        after = page.next;
        el.dataset.after = String(after);
        if (page.ended) {
          el.dataset.ended = "yes";
          return refresh();
        }
        return sleep(pollMs).then(step);
      }).catch(function () {
        return sleep(pollMs).then(step);
      });
    }
    step();
  }

  function followLogs() {
    document.querySelectorAll("[data-log-url]:not([data-tailing])").forEach(follow);
  }

  tick();
  setInterval(tick, 1000);
  followLogs();
  if (document.hidden) {
    say("Paused while this tab is hidden", "paused");
  } else {
    say("Live", "live");
    schedule();
  }
}());
