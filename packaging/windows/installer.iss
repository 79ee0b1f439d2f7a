; Inno Setup script: a double-click setup .exe for the PyInstaller onedir build.
; Build the app first (packaging/build_windows.ps1), then:  iscc packaging\windows\installer.iss
; /DAppVersion=0.1.0 overrides the version.
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

[Files]
Source: "..\..\dist\sam2-annotator\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\SAM2 Annotator"; Filename: "{app}\sam2-annotator.exe"
Name: "{group}\Uninstall SAM2 Annotator"; Filename: "{uninstallexe}"
Name: "{autodesktop}\SAM2 Annotator"; Filename: "{app}\sam2-annotator.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked

[Run]
Filename: "{app}\sam2-annotator.exe"; Description: "Start SAM2 Annotator"; Flags: nowait postinstall skipifsilent
