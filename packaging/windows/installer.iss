; Inno Setup script: a double-click setup .exe for the PyInstaller onedir build.
; Build the app first (packaging/build_windows.ps1), then:  iscc packaging\windows\installer.iss
; /DAppVersion=0.1.0 overrides the version.
; The folder holds two executables: sam2-annotator.exe (windowed, the app) and
; sam2-annotator-cli.exe (console: every subcommand prints in a terminal). The optional
; "addtopath" task puts the install folder on the user's (or, for an all-users install, the
; system) PATH, so `sam2-annotator-cli segment ...` works in any terminal; uninstall removes it.
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6F0C7B1E-5A2D-4C4B-9E4F-2B8A57A0C2D1}
AppName=SAM2 Annotator
AppVersion={#AppVersion}
AppPublisher=sam2-annotator developers
DefaultDirName={autopf}\SAM2 Annotator
DefaultGroupName=SAM2 Annotator
OutputDir=..\..\dist
OutputBaseFilename=sam2-annotator-{#AppVersion}-windows-setup
Compression=lzma2/max
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
UninstallDisplayIcon={app}\sam2-annotator.exe
WizardStyle=modern
ChangesEnvironment=yes

[Files]
Source: "..\..\dist\sam2-annotator\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\SAM2 Annotator"; Filename: "{app}\sam2-annotator.exe"
Name: "{group}\Uninstall SAM2 Annotator"; Filename: "{uninstallexe}"
Name: "{autodesktop}\SAM2 Annotator"; Filename: "{app}\sam2-annotator.exe"; Tasks: desktopicon
Name: "{group}\SAM2 Annotator command line"; Filename: "{cmd}"; Parameters: "/k ""{app}\sam2-annotator-cli.exe"" --help"; WorkingDir: "{userdocs}"

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked
Name: "addtopath"; Description: "Add the command-line tool (sam2-annotator-cli) to PATH"; Flags: unchecked

[Registry]
Root: HKA; Subkey: "{code:EnvironmentKey}"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\sam2-annotator.exe"; Description: "Start SAM2 Annotator"; Flags: nowait postinstall skipifsilent

[Code]
// PATH lives in HKCU\Environment for a per-user install, in HKLM for an all-users one.
function EnvironmentKey(Param: string): string;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function EnvironmentRoot: Integer;
begin
  if IsAdminInstallMode then
    Result := HKEY_LOCAL_MACHINE
  else
    Result := HKEY_CURRENT_USER;
end;

function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(EnvironmentRoot, EnvironmentKey(''), 'Path', Paths) then
    Result := True
  else
    Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Paths, Dir: string;
  P: Integer;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  if not RegQueryStringValue(EnvironmentRoot, EnvironmentKey(''), 'Path', Paths) then
    exit;
  Dir := ExpandConstant('{app}');
  P := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';');
  if P = 0 then
    exit;
  // P is the ';' before the entry in ';' + Paths, i.e. Paths[P - 1] (none when P = 1);
  // delete the entry with one separator
  if P = 1 then
    Delete(Paths, 1, Length(Dir) + 1)
  else
    Delete(Paths, P - 1, Length(Dir) + 1);
  RegWriteExpandStringValue(EnvironmentRoot, EnvironmentKey(''), 'Path', Paths);
end;
