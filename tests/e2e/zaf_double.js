/* A test double of the Zendesk App Framework client, served in place of the vendored SDK.
 *
 * It implements the documented calls the sidebar uses: ZAFClient.init, client.on
 * ('app.registered'), client.get, client.metadata, client.invoke and client.request. Requests go
 * to the test's stand-in for Zendesk's proxy (same origin as the app), which inserts the secure
 * setting server-side as Zendesk does: the token never enters this page. Calls are recorded on
 * window.__zaf for the test to read.
 */
(function () {
  'use strict';
  var CONFIG = /*CONFIG*/ null;

  function parse(answer) {
    var json = /json/.test(answer.content_type || '');
    return json && answer.body ? JSON.parse(answer.body) : answer.body;
  }

  window.__zaf = { requests: [], invokes: [], gets: [] };

  window.ZAFClient = {
    init: function () {
      var client = {
        on: function (name, handler) {
          if (name === 'app.registered') {
            setTimeout(function () { handler.call(client, { currentUser: CONFIG.user }); }, 0);
          }
        },
        get: function (paths) {
          var wanted = [].concat(paths), values = { 'ticket.id': CONFIG.ticket, currentUser: CONFIG.user };
          window.__zaf.gets.push(wanted);
          var answer = {};
          wanted.forEach(function (path) { answer[path] = values[path]; });
          return Promise.resolve(answer);
        },
        metadata: function () {
          return Promise.resolve({ appId: 0, installationId: 1, settings: CONFIG.settings });
        },
        invoke: function () {
          window.__zaf.invokes.push(Array.prototype.slice.call(arguments));
          return Promise.resolve({});
        },
        request: function (options) {
          window.__zaf.requests.push(options);
          return fetch(CONFIG.proxy, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(options)
          }).then(function (response) { return response.json(); }).then(function (answer) {
            if (answer.status >= 200 && answer.status < 300) { return parse(answer); }
            var error = { status: answer.status, statusText: answer.reason, responseText: answer.body };
            try { error.responseJSON = JSON.parse(answer.body); } catch (e) { /* not JSON */ }
            throw error;
          });
        }
      };
      return client;
    }
  };
})();
