// MSAL's redirect bridge: the sign-in popup (or the silent-renewal iframe) lands here with the authorization
// response, which is handed to the portal's window over a BroadcastChannel; the portal then redeems the code.
"use strict";
window.msalRedirectBridge.broadcastResponseToMainFrame().catch((error) => {
  document.body.textContent = `Sign-in could not complete: ${error.errorCode || error.message}`;
});
