// The console's only script (served as /console.js; the pages' policy allows no other): one
// EventSource, and each pushed job row replaces its row in the jobs table (or is added on top).
export const CONSOLE_JS = `'use strict';
(function () {
  var live = document.getElementById('live');
  var body = document.querySelector('#jobs tbody');
  if (!body) return;
  var events = new EventSource('/events');
  events.onopen = function () { liveBadge(true); };
  events.onerror = function () { liveBadge(false); };
  events.addEventListener('status', function (e) {
    liveBadge(JSON.parse(e.data).live);
  });
  function liveBadge(on) {
    live.textContent = on ? 'live: progress is pushed as jobs run' : 'reconnecting to the database...';
    live.className = on ? 'live on' : 'live off';
  }
  events.addEventListener('job', function (e) {
    var job = JSON.parse(e.data);
    var holder = document.createElement('tbody');
    holder.innerHTML = job.html; // rendered and escaped by the server
    var row = holder.firstElementChild;
    var old = document.getElementById('job-' + job.id);
    if (old) old.replaceWith(row); else body.insertBefore(row, body.firstChild);
  });
})();
`;
