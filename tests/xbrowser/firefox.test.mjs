// The cross-browser suite (suite.mjs) in firefox, through its WebDriver.
import { suite } from './suite.mjs';

suite('firefox');
