/**
 * Response bodies the lab serves: our own templates that follow the structure of the real pages (the OWA
 * logon page of Exchange 2013-SE and of 2010, IIS and nginx default and error pages, the eDiscovery export
 * tool's ClickOnce deployment manifest). Pure string builders; the server renders them once and caches.
 *
 * What matters for fingerprinting is kept faithful: the page markers (`<!-- OwaPage = ASP.auth_logon_aspx -->`,
 * the logon form posting to /owa/auth.owa, or /owa/auth/owaauth.dll on 2010), the asset paths
 * (/owa/auth/<major.minor.build>/themes/resources/... on 2013 and later, /owa/<full build>/... on 2010) and
 * the manifest's `<assemblyIdentity ... version="...">`. The styling is abridged.
 */

export interface LogonPageOptions {
  /** What goes into asset paths: 3-part CU build on 2013+ ("15.1.2176"), full build on 2010. */
  readonly assetVersion: string;
  /** Page title: "Outlook" (2016 and later), "Outlook Web App" (2010, 2013). */
  readonly title: string;
  /** Public host name, used in the hidden `destination` field. */
  readonly hostname: string;
  /** Form action; phishing kits post elsewhere. */
  readonly action?: string;
}

/** The forms-based-authentication logon page of Exchange 2013, 2016, 2019 and SE. */
export function logonPage(o: LogonPageOptions): string {
  const r = `/owa/auth/${o.assetVersion}/themes/resources`;
  const action = o.action ?? '/owa/auth.owa';
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<!-- Copyright (c) 2011 Microsoft Corporation.  All rights reserved. -->
<!-- OwaPage = ASP.auth_logon_aspx -->

<!-- {57A118C6-2DA9-419d-BE9A-F92B0F9A418B} -->
<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0 Transitional//EN">
<html>
<head>
<meta http-equiv="X-UA-Compatible" content="IE=10" />
<link rel="shortcut icon" href="${r}/favicon.ico" type="image/x-icon">
<meta http-equiv="Content-Type" content="text/html; CHARSET=utf-8">
<meta name="Robots" content="NOINDEX, NOFOLLOW">
<title>${o.title}</title>
<style>
@font-face {
    font-family: "wf_segoe-ui_normal";
    src: url("${r}/segoeui-regular.eot?#iefix") format("embedded-opentype"),
         url("${r}/segoeui-regular.ttf") format("truetype");
}
@font-face {
    font-family: "wf_segoe-ui_semilight";
    src: url("${r}/segoeui-semilight.eot?#iefix") format("embedded-opentype"),
         url("${r}/segoeui-semilight.ttf") format("truetype");
}
@font-face {
    font-family: "wf_segoe-ui_semibold";
    src: url("${r}/segoeui-semibold.eot?#iefix") format("embedded-opentype"),
         url("${r}/segoeui-semibold.ttf") format("truetype");
}
</style>
<style>
body, .mouse, .twide, .tnarrow, form { height: 100%; width: 100%; margin: 0px; }
.mouse, .twide { min-width: 650px; min-height: 650px; position: absolute; top: 0px; bottom: 0px; left: 0px; right: 0px; }
.sidebar { background-color: #0072C6; }
.mouse .sidebar, .twide .sidebar { position: absolute; top: 0px; bottom: 0px; left: 0px; display: inline-block; width: 332px; }
.tnarrow .sidebar { display: none; }
.mouse .owaLogoContainer, .twide .owaLogoContainer { margin: 213px auto auto 109px; text-align: left; }
.mouse .logonContainer, .twide .logonContainer { padding-top: 174px; padding-left: 464px; padding-right: 142px; position: absolute; top: 0px; bottom: 0px; left: 0px; right: 0px; text-align: center; }
.mouse .logonDiv, .twide .logonDiv { position: relative; vertical-align: top; display: inline-block; width: 423px; }
.signInInputText { border: 1px solid #98A3A6; color: #333333; background-color: #FDFDFD; width: 250px; margin-bottom: 10px; }
.mouse .signInInputText { height: 22px; font-size: 12px; padding: 3px 5px; font-family: 'wf_segoe-ui_normal', 'Segoe UI', 'Segoe WP', Tahoma, Arial, sans-serif; margin-bottom: 20px; }
.signInEnter { margin-top: 10px; }
.signinbutton { cursor: pointer; display: inline; }
.signinTxt { font-size: 23px; color: #0072C6; font-family: 'wf_segoe-ui_semilight', 'Segoe UI Light', 'Segoe WP Light', 'Segoe UI', 'Segoe WP', Tahoma, Arial, sans-serif; }
.hidden-submit { border: 0 none !important; height: 0 !important; width: 0 !important; padding: 0 !important; margin: 0 !important; overflow: hidden !important; }
.signInBg { background: #f2f2f2; }
</style>
<script type="text/javascript">
    // flogon.js (abridged): sign-in page helpers
    var a_fRC = 1;
    var g_fFcs = 1;
    var a_fLOff = 0;
    var a_fCAC = 0;
    var a_fEnbSMm = 0;
    function gbid(s) { return document.getElementById(s); }
    function clkLgn() { if (gbid("username").value.length > 0) { document.logonForm.submit(); } }
    function checkSubmit(e) { if (e && e.keyCode == 13) { clkLgn(); return false; } return true; }
    function clkRtry() { window.location.reload(); }
    function initLogon() { try { gbid("username").focus(); } catch (e) { } }
    window.onload = function () { if (a_fRC) initLogon(); };
</script>
</head>
<body class="signInBg">
<noscript>
    <div id="dvErr">
        <table cellpadding="0" cellspacing="0"><tr>
            <td><img src="${r}/warn.png" alt=""></td>
            <td style="width:100%">To use ${o.title}, browser settings must allow scripts to run. For information about how to allow scripts, consult the Help for your browser.</td>
        </tr></table>
    </div>
</noscript>
<form action="${action}" method="POST" name="logonForm" ENCTYPE="application/x-www-form-urlencoded" autocomplete="off">
<input type="hidden" name="destination" value="https://${o.hostname}/owa/">
<input type="hidden" name="flags" value="4">
<input type="hidden" name="forcedownlevel" value="0">
<div id="mainLogonDiv" class="mouse">
    <div class="sidebar">
        <div class="owaLogoContainer">
            <img src="${r}/owa_logo.png" class="owaLogo" aria-hidden="true">
            <img src="${r}/owa_logo_small.png" class="owaLogoSmall" aria-hidden="true">
        </div>
    </div>
    <div class="logonContainer">
    <div id="lgnDiv" class="logonDiv" onKeyPress="return checkSubmit(event)">
        <div class="signInImageHeader" role="heading" aria-label="${o.title}">
            <img class="mouseHeader" src="${r}/owa_text_blue.png" alt="${o.title}">
        </div>
        <div class="signInInputLabel" id="userNameLabel" aria-hidden="true">Domain\\user name:</div>
        <div><input id="username" name="username" class="signInInputText" role="textbox" aria-labelledby="userNameLabel"/></div>
        <div class="signInInputLabel" id="passwordLabel" aria-hidden="true">Password:</div>
        <div><input id="password" onfocus="g_fFcs=0" name="password" value="" type="password" class="signInInputText" aria-labelledby="passwordLabel"/></div>
        <div id="expltxt" class="signInExpl" role="alert"></div>
        <div class="signInEnter">
            <div onclick="clkLgn()" class="signinbutton" role="button" tabIndex="0">
                <img class="imgLnk" src="${r}/Sign_in_arrow.png" alt=""><span class="signinTxt">sign in</span>
            </div>
            <input name="isUtf8" value="1" type="hidden"/>
        </div>
        <div class="hidden-submit"><input type="submit" tabindex="-1"/></div>
    </div>
    </div>
    <div id="cookieMsg" class="logonDiv" style="display:none">
        <div class="signInHeader">${o.title}</div>
        <div class="signInExpl">Please enable cookies for this Web site.<br><br>Cookies are currently disabled by your browser. ${o.title} requires that cookies be enabled.</div>
        <div class="signInEnter"><div onclick="clkRtry()" style="cursor:pointer;display:inline">
            <img class="imgLnk" src="${r}/Sign_in_arrow.png" alt=""><span class="signinTxt" tabIndex="0">retry</span>
        </div></div>
    </div>
</div>
</form>
</body>
</html>
`;
}

/** The logon page of Exchange 2010 (SP3): assets under /owa/<full build>/, form posting to owaauth.dll. */
export function logonPage2010(o: LogonPageOptions): string {
  const v = `/owa/${o.assetVersion}`;
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<!-- Copyright (c) 2006 Microsoft Corporation.  All rights reserved. -->
<!-- OwaPage = ASP.auth_logon_aspx -->
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; CHARSET=utf-8">
<meta name="Robots" content="NOINDEX, NOFOLLOW">
<title>${o.title}</title>
<link type="text/css" rel="stylesheet" href="${v}/themes/base/logon.css">
<link type="text/css" rel="stylesheet" href="${v}/themes/base/owafont.css">
<script type="text/javascript" src="${v}/scripts/premium/flogon.js"></script>
<script type="text/javascript">
    var a_fRC = 1;
    var g_fFcs = 1;
    var a_fLOff = 0;
    var a_fCAC = 1;
    var a_fEnbSMm = 1;
</script>
<link rel="shortcut icon" href="${v}/themes/base/favicon.ico" type="image/x-icon">
</head>
<body class="owaLgnBdy">
<noscript>
    <div id="dvErr"><table cellpadding="0" cellspacing="0"><tr>
        <td><img src="${v}/themes/base/warn.png" alt=""></td>
        <td style="width:100%">To use ${o.title}, browser settings must allow scripts to run.</td>
    </tr></table></div>
</noscript>
<form action="${o.action ?? '/owa/auth/owaauth.dll'}" method="POST" name="logonForm" autocomplete="off">
<input type="hidden" name="destination" value="https://${o.hostname}/owa/">
<input type="hidden" name="flags" value="4">
<input type="hidden" name="forcedownlevel" value="0">
<table id="tblMain" align="center" cellpadding="0" cellspacing="0">
    <tr><td colspan="3"><table cellpadding="0" cellspacing="0" class="mid tblConn">
        <tr><td rowspan="2" align="right" class="tdConnImg"><img src="${v}/themes/base/lgntopl.gif" alt=""></td>
        <td class="tdConn"><img src="${v}/themes/base/lgntopm.gif" alt=""></td></tr>
    </table></td></tr>
    <tr><td id="mdLft">&nbsp;</td><td id="mdMid"><table class="mid">
        <tr><td id="expltxt" class="expl"></td></tr>
        <tr><td nowrap><label for="username">Domain\\user name:</label></td>
            <td class="txtpad"><input id="username" name="username" type="text" class="txt"></td></tr>
        <tr><td nowrap><label for="password">Password:</label></td>
            <td class="txtpad"><input id="password" name="password" type="password" class="txt" onfocus="g_fFcs=0"></td></tr>
        <tr><td colspan="2" align="right" class="txtpad">
            <input type="submit" class="btn" value="Sign in" onclick="clkLgn()">
            <input name="isUtf8" value="1" type="hidden">
        </td></tr>
    </table></td><td id="mdRt">&nbsp;</td></tr>
    <tr><td colspan="3" class="lgnBtm"><img src="${v}/themes/base/lgnbotl.gif" alt=""></td></tr>
</table>
</form>
</body>
</html>
`;
}

/** The eDiscovery Export Tool ClickOnce deployment manifest (/ecp/<version>/exporttool/...application). */
export function exporttoolManifest(version: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<asmv1:assembly xsi:schemaLocation="urn:schemas-microsoft-com:asm.v1 assembly.adaptive.xsd" manifestVersion="1.0" xmlns:asmv1="urn:schemas-microsoft-com:asm.v1" xmlns="urn:schemas-microsoft-com:asm.v2" xmlns:asmv2="urn:schemas-microsoft-com:asm.v2" xmlns:xrml="urn:mpeg:mpeg21:2003:01-REL-R-NS" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:asmv3="urn:schemas-microsoft-com:asm.v3" xmlns:dsig="http://www.w3.org/2000/09/xmldsig#" xmlns:co.v1="urn:schemas-microsoft-com:clickonce.v1" xmlns:co.v2="urn:schemas-microsoft-com:clickonce.v2">
  <assemblyIdentity name="microsoft.exchange.ediscovery.exporttool.application" version="${version}" publicKeyToken="31bf3856ad364e35" language="neutral" processorArchitecture="msil" xmlns="urn:schemas-microsoft-com:asm.v1" />
  <description asmv2:publisher="Microsoft Corporation" co.v1:suiteName="Microsoft Exchange" asmv2:product="Microsoft Exchange eDiscovery Export Tool" xmlns="urn:schemas-microsoft-com:asm.v1" />
  <deployment install="false" trustURLParameters="true" mapFileExtensions="true" co.v1:createDesktopShortcut="false" />
  <compatibleFrameworks xmlns="urn:schemas-microsoft-com:clickonce.v2">
    <framework targetVersion="4.5" profile="Full" supportedRuntime="4.0.30319" />
  </compatibleFrameworks>
  <dependency>
    <dependentAssembly dependencyType="install" codebase="microsoft.exchange.ediscovery.exporttool.exe.manifest" size="38157">
      <assemblyIdentity name="microsoft.exchange.ediscovery.exporttool.exe" version="${version}" publicKeyToken="31bf3856ad364e35" language="neutral" processorArchitecture="msil" type="win32" />
      <hash>
        <dsig:Transforms>
          <dsig:Transform Algorithm="urn:schemas-microsoft-com:HashTransforms.Identity" />
        </dsig:Transforms>
        <dsig:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha256" />
        <dsig:DigestValue>TGFiIG1hbmlmZXN0OiBub3QgYSByZWFsIGRpZ2VzdC4=</dsig:DigestValue>
      </hash>
    </dependentAssembly>
  </dependency>
  <publisherIdentity name="CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US" issuerKeyHash="0000000000000000000000000000000000000000" />
</asmv1:assembly>`;
}

/** IIS start page (iisstart.htm) of Windows Server 2012 R2 and later. */
export function iisStartPage(): string {
  return `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1" />
<title>IIS Windows Server</title>
<style type="text/css">
<!--
body {
	color:#000000;
	background-color:#0072C6;
	margin:0;
}

#container {
	margin-left:auto;
	margin-right:auto;
	text-align:center;
	}

a img {
	border:none;
}

-->
</style>
</head>
<body>
<div id="container">
<a href="http://go.microsoft.com/fwlink/?linkid=66138&amp;clcid=0x409"><img src="iisstart.png" alt="IIS" width="960" height="600" /></a>
</div>
</body>
</html>`;
}

/** IIS 7.5 welcome page (Windows Server 2008 R2). */
export function iis75StartPage(): string {
  return `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1" />
<title>IIS7</title>
<style type="text/css">
<!--
body {
	color:#000000;
	background-color:#B3B3B3;
	margin:0;
}

#container {
	margin-left:auto;
	margin-right:auto;
	text-align:center;
	}

a img {
	border:none;
}

-->
</style>
</head>
<body>
<div id="container">
<a href="http://go.microsoft.com/fwlink/?linkid=66138&amp;clcid=0x409"><img src="welcome.png" alt="IIS7" width="571" height="411" /></a>
</div>
</body>
</html>`;
}

/** IIS detailed-off error page (the one remote clients see). */
export function iisErrorPage(status: 403 | 404, title: string, detail: string): string {
  return `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>${status} - ${title}</title>
<style type="text/css">
<!--
body{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, sans-serif;background:#EEEEEE;}
fieldset{padding:0 15px 10px 15px;}
h1{font-size:2.4em;margin:0;color:#FFF;}
h2{font-size:1.7em;margin:0;color:#CC0000;}
h3{font-size:1.2em;margin:10px 0 0 0;color:#000000;}
#header{width:96%;margin:0 0 0 0;padding:6px 2% 6px 2%;font-family:"trebuchet MS", Verdana, sans-serif;color:#FFF;
background-color:#555555;}
#content{margin:0 0 0 2%;position:relative;}
.content-container{background:#FFF;width:96%;margin-top:8px;padding:10px;position:relative;}
-->
</style>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>${status} - ${title}</h2>
  <h3>${detail}</h3>
 </fieldset></div>
</div>
</body>
</html>
`;
}

/** The body IIS sends with a redirect ("Object moved"). `url` is inserted verbatim (the server's own URL). */
export function objectMovedBody(url: string): string {
  return `<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This document may be found <a HREF="${url}">here</a></body>`;
}

/** ASP.NET's redirect body (Exchange Online front ends). */
export function aspnetObjectMoved(url: string): string {
  return `<html><head><title>Object moved</title></head><body>\r\n<h2>Object moved to <a href="${url.replace(/&/g, '&amp;')}">here</a>.</h2>\r\n</body></html>\r\n`;
}

export function nginxWelcome(): string {
  return `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
    body {
        width: 35em;
        margin: 0 auto;
        font-family: Tahoma, Verdana, Arial, sans-serif;
    }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;
}

export function nginxError(status: number, reason: string, server: string): string {
  return `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>${server}</center>\r\n</body>\r\n</html>\r\n`;
}
