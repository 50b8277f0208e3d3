/**
 * Response bodies of the independent estate, written for this test from what Exchange, IIS and nginx
 * are documented and observed to send (public write-ups, the MS-OXDSCLI/ClickOnce formats, and the
 * structure of a captured OWA logon page), deliberately smaller than the real pages and independent
 * of the project's lab. Only the parts a fingerprinting tool could look at are kept.
 */

/** Exchange 2013/2016/2019/SE OWA logon page: asset path /owa/auth/<major.minor.build>/ (the CU, no revision). */
export function owaLogon2013(cuBuild: string, host: string): string {
  const res = `/owa/auth/${cuBuild}/themes/resources`;
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<!-- Copyright (c) 2011 Microsoft Corporation.  All rights reserved. -->
<!-- OwaPage = ASP.auth_logon_aspx -->
<html>
<head>
<meta http-equiv="X-UA-Compatible" content="IE=10" />
<link rel="shortcut icon" href="${res}/favicon.ico" type="image/x-icon">
<meta http-equiv="Content-Type" content="text/html; CHARSET=utf-8">
<meta name="Robots" content="NOINDEX, NOFOLLOW">
<title>Outlook</title>
<style>
@font-face { font-family: "wf_segoe-ui_normal"; src: url("${res}/segoeui-regular.eot?#iefix") format("embedded-opentype"), url("${res}/segoeui-regular.ttf") format("truetype"); }
.signInBg { background-color: #fff; }
</style>
<script type="text/javascript">
var g_fFcs = 1;
function clkLgn() { var f = document.forms["logonForm"]; if (f.username.value === "") { return; } f.submit(); }
function checkSubmit(e) { if (e && e.keyCode === 13) { clkLgn(); return false; } return true; }
</script>
</head>
<body class="signInBg">
<form action="/owa/auth.owa" method="POST" name="logonForm" ENCTYPE="application/x-www-form-urlencoded" autocomplete="off">
<input type="hidden" name="destination" value="https://${host}/owa/">
<input type="hidden" name="flags" value="4">
<input type="hidden" name="forcedownlevel" value="0">
<div id="lgnDiv" class="logonDiv" onKeyPress="return checkSubmit(event)">
<div class="signInInputLabel" id="userNameLabel" aria-hidden="true">Domain\\user name:</div>
<div><input id="username" name="username" class="signInInputText" role="textbox" aria-labelledby="userNameLabel"/></div>
<div class="signInInputLabel" id="passwordLabel" aria-hidden="true">Password:</div>
<div><input id="password" onfocus="g_fFcs=0" name="password" value="" type="password" class="signInInputText" aria-labelledby="passwordLabel"/></div>
<div class="signInEnter"><div onclick="clkLgn()" class="signinbutton" role="button" tabIndex="0"><span class="signinTxt">sign in</span></div></div>
</div>
</form>
</body>
</html>
`;
}

/** Exchange 2010 OWA logon page: assets under /owa/<full build>/ (e.g. /owa/14.3.509.0/), form posts to owaauth.dll. */
export function owaLogon2010(fullBuild: string, host: string): string {
  const base = `/owa/${fullBuild}`;
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<!-- Copyright (c) 2006 Microsoft Corporation.  All rights reserved. -->
<!-- OwaPage = ASP.auth_logon_aspx -->
<html>
<head>
<meta http-equiv="X-UA-Compatible" content="IE=EmulateIE7">
<title>Outlook Web App</title>
<link type="text/css" rel="stylesheet" href="${base}/themes/resources/logon.css">
<link type="text/css" rel="stylesheet" href="${base}/themes/resources/owafont_ltr.css">
<link rel="shortcut icon" href="${base}/themes/resources/favicon.ico" type="image/x-icon">
<script type="text/javascript" src="${base}/scripts/premium/flogon.js"></script>
</head>
<body class="owaLgnBdy">
<form action="/owa/auth/owaauth.dll" method="POST" name="logonForm" autocomplete="off">
<input type="hidden" name="destination" value="https://${host}/owa/">
<input type="hidden" name="flags" value="0">
<input type="hidden" name="forcedownlevel" value="0">
<table id="tblMid" class="mid">
<tr><td><label for="rdoPblc"><input id="rdoPblc" type="radio" name="trusted" value="0" checked>This is a public or shared computer</label></td></tr>
<tr><td><label for="username">Domain\\user name:</label><input id="username" name="username" type="text" class="txt"></td></tr>
<tr><td><label for="password">Password:</label><input id="password" name="password" type="password" class="txt" onfocus="g_fFcs=0"></td></tr>
<tr><td><input type="submit" class="btn" value="Sign in" onclick="clkLgn()"><input name="isUtf8" value="1" type="hidden"></td></tr>
</table>
</form>
</body>
</html>
`;
}

/** The eDiscovery export tool ClickOnce deployment manifest ECP serves (Exchange 2013 and later). */
export function exporttoolManifest(build: string): string {
  const id = 'publicKeyToken="31bf3856ad364e35" language="neutral" processorArchitecture="msil"';
  return `<?xml version="1.0" encoding="utf-8"?>
<asmv1:assembly xsi:schemaLocation="urn:schemas-microsoft-com:asm.v1 assembly.adaptive.xsd" manifestVersion="1.0" xmlns:asmv1="urn:schemas-microsoft-com:asm.v1" xmlns="urn:schemas-microsoft-com:asm.v2" xmlns:asmv2="urn:schemas-microsoft-com:asm.v2" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:co.v1="urn:schemas-microsoft-com:clickonce.v1">
  <assemblyIdentity name="microsoft.exchange.ediscovery.exporttool.application" version="${build}" ${id} xmlns="urn:schemas-microsoft-com:asm.v1" />
  <description asmv2:publisher="Microsoft Corporation" co.v1:suiteName="Microsoft Exchange" asmv2:product="Microsoft Exchange eDiscovery Export Tool" xmlns="urn:schemas-microsoft-com:asm.v1" />
  <deployment install="false" trustURLParameters="true" mapFileExtensions="true" />
  <compatibleFrameworks xmlns="urn:schemas-microsoft-com:clickonce.v2">
    <framework targetVersion="4.5" profile="Full" supportedRuntime="4.0.30319" />
  </compatibleFrameworks>
  <dependency>
    <dependentAssembly dependencyType="install" codebase="${build}\\microsoft.exchange.ediscovery.exporttool.exe.manifest" size="24017">
      <assemblyIdentity name="microsoft.exchange.ediscovery.exporttool.exe" version="${build}" ${id} type="win32" />
    </dependentAssembly>
  </dependency>
</asmv1:assembly>
`;
}

/** IIS detailed-error style 404 (what IIS sends for a missing file to a remote client). */
export const IIS_404 = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/><title>404 - File or directory not found.</title></head>
<body><div id="header"><h1>Server Error</h1></div>
<div id="content"><fieldset><h2>404 - File or directory not found.</h2>
<h3>The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.</h3></fieldset></div>
</body></html>
`;

/** IIS 403.4: the site requires SSL and the request came over plain HTTP. */
export const IIS_403_SSL = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/><title>403 - Forbidden: Access is denied.</title></head>
<body><div id="header"><h1>Server Error</h1></div>
<div id="content"><fieldset><h2>403 - Forbidden: Access is denied.</h2>
<h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3></fieldset></div>
</body></html>
`;

/** IIS 10 default start page. */
export const IIS_START = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1" />
<title>IIS Windows Server</title>
<style type="text/css">body { color:#000000; background-color:#0072C6; margin:0; } #container { margin-left:auto; margin-right:auto; text-align:center; }</style>
</head>
<body>
<div id="container"><a href="http://go.microsoft.com/fwlink/?linkid=66138&amp;clcid=0x409"><img src="iisstart.png" alt="IIS" width="960" height="600" /></a></div>
</body>
</html>
`;

export const NGINX_WELCOME = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;

export function nginxError(code: number, reason: string): string {
  return `<html>\r\n<head><title>${code} ${reason}</title></head>\r\n<body>\r\n<center><h1>${code} ${reason}</h1></center>\r\n<hr><center>nginx/1.18.0 (Ubuntu)</center>\r\n</body>\r\n</html>\r\n`;
}

export const APACHE_404 = `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">
<html><head>
<title>404 Not Found</title>
</head><body>
<h1>Not Found</h1>
<p>The requested URL was not found on this server.</p>
<hr>
<address>Apache/2.4.41 (Ubuntu) Server Port 443</address>
</body></html>
`;
