# Pre-start script for the Servarr apps (radarr, sonarr, prowlarr): make sure config.xml
# exists with the app's port and AuthenticationMethod=External, since access control is
# Authentik's forward-auth in front of bloud-proxy (upstream's configurator did the same).
# Servarr fills in every missing key on first start, so a minimal file is enough.
{ port, configDir }:
''
  dir=${configDir}
  f="$dir/config.xml"
  mkdir -p "$dir"
  if [ ! -e "$f" ]; then
    cat > "$f.tmp" <<'XML'
  <Config>
    <Port>${toString port}</Port>
    <UrlBase></UrlBase>
    <BindAddress>*</BindAddress>
    <AuthenticationMethod>External</AuthenticationMethod>
    <AuthenticationRequired>DisabledForLocalAddresses</AuthenticationRequired>
    <LaunchBrowser>False</LaunchBrowser>
    <AnalyticsEnabled>False</AnalyticsEnabled>
    <UpdateMechanism>Docker</UpdateMechanism>
  </Config>
  XML
    mv -f "$f.tmp" "$f"
  elif grep -q '<AuthenticationMethod>' "$f"; then
    sed -i 's|<AuthenticationMethod>[^<]*</AuthenticationMethod>|<AuthenticationMethod>External</AuthenticationMethod>|' "$f"
  else
    sed -i 's|</Config>|  <AuthenticationMethod>External</AuthenticationMethod>\n</Config>|' "$f"
  fi
''
